-- Follow-ups (`[followups]`): each reminder and nudge is claimed once per ticket, kind and the
-- wait or idle spell it is about (`since`: when the wait began, or the ticket's last change),
-- so several instances send it once and a new wait or idle spell gets its own.
CREATE TABLE followup_claims (
    ticket_id  INTEGER NOT NULL REFERENCES tickets (id),
    kind       TEXT NOT NULL,
    since      TEXT NOT NULL,
    claimed_by TEXT NOT NULL,
    claimed_at TEXT NOT NULL,
    PRIMARY KEY (ticket_id, kind, since)
);
