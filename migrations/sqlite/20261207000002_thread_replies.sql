-- The replies written in each ticket's thread, with their edits and deletion, so a ticket's
-- transcript is whole. A platform message is kept once (`channel` is `slack:C1`).
CREATE TABLE ticket_replies (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id  INTEGER NOT NULL REFERENCES tickets (id),
    channel    TEXT NOT NULL,
    message_id TEXT NOT NULL,
    author     TEXT NOT NULL,
    text       TEXT NOT NULL,
    at         TEXT NOT NULL,
    edited_at  TEXT,
    deleted_at TEXT
);
CREATE UNIQUE INDEX ticket_replies_message ON ticket_replies (channel, message_id);
CREATE INDEX ticket_replies_ticket ON ticket_replies (ticket_id, at);
