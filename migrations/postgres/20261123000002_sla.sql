-- SLA clocks: a ticket waiting on the customer pauses its resolution clock; finished pauses
-- are kept as business seconds. Escalations are claimed once per ticket, clock and level.
ALTER TABLE tickets ADD COLUMN waiting_since TIMESTAMPTZ;
ALTER TABLE tickets ADD COLUMN sla_paused_seconds BIGINT NOT NULL DEFAULT 0;

CREATE TABLE sla_escalations (
    ticket_id  BIGINT NOT NULL REFERENCES tickets (id),
    clock      TEXT NOT NULL,
    level      TEXT NOT NULL,
    claimed_by TEXT NOT NULL,
    claimed_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (ticket_id, clock, level)
);
