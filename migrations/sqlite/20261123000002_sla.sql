-- SLA clocks: a ticket waiting on the customer pauses its resolution clock; finished pauses
-- are kept as business seconds. Escalations are claimed once per ticket, clock and level.
ALTER TABLE tickets ADD COLUMN waiting_since TEXT;
ALTER TABLE tickets ADD COLUMN sla_paused_seconds INTEGER NOT NULL DEFAULT 0;

CREATE TABLE sla_escalations (
    ticket_id  INTEGER NOT NULL REFERENCES tickets (id),
    clock      TEXT NOT NULL,
    level      TEXT NOT NULL,
    claimed_by TEXT NOT NULL,
    claimed_at TEXT NOT NULL,
    PRIMARY KEY (ticket_id, clock, level)
);
