-- Tickets other systems open through the API, by (token name, key): a repeat of the same
-- request finds its ticket instead of opening another. A key is claimed before its ticket is
-- written (ticket_id NULL meanwhile); the ticket's own transaction fills it in.
CREATE TABLE external_keys (
    source     TEXT NOT NULL,
    key        TEXT NOT NULL,
    ticket_id  BIGINT REFERENCES tickets (id),
    claimed_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (source, key)
);
