-- The web view's sign-in links (asked for in chat with `/ticket web`) and sessions. Only a
-- SHA-256 of each link token and session id is kept, so a copy of the database opens nothing.
-- `roles` is the JSON list of the Slack user groups or Discord roles chat saw the person hold.
CREATE TABLE web_links (
    token_hash TEXT PRIMARY KEY,
    account    TEXT NOT NULL,
    roles      TEXT NOT NULL,
    next       TEXT,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT
);
CREATE INDEX web_links_expiry ON web_links (expires_at);

CREATE TABLE web_sessions (
    id_hash    TEXT PRIMARY KEY,
    account    TEXT NOT NULL,
    roles      TEXT NOT NULL,
    csrf       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX web_sessions_expiry ON web_sessions (expires_at);
