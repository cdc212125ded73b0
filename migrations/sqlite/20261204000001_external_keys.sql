-- Tickets other systems open through the API, by (token name, key): a repeat of the same
-- request finds its ticket instead of opening another. A key is claimed before its ticket is
-- written (ticket_id NULL meanwhile); the ticket's own transaction fills it in. Keys of
-- monitoring alerts (`alert:FINGERPRINT`) also keep the alert's last state, `firing` or
-- `resolved`, and when it changed, to tell a repeated notification from a new firing.
CREATE TABLE external_keys (
    source     TEXT NOT NULL,
    key        TEXT NOT NULL,
    ticket_id  INTEGER REFERENCES tickets (id),
    claimed_at TEXT NOT NULL,
    state      TEXT,
    state_at   TEXT,
    PRIMARY KEY (source, key)
);
