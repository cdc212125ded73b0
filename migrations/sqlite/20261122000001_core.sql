-- Core schema: tickets and their audit log, inbox, outbox, people, kudos, metric samples,
-- CSAT responses and schedule fires. Timestamps are UTC RFC 3339 text with milliseconds
-- (`2026-03-02T09:00:00.000Z`), fixed width so text order is time order.

CREATE TABLE tickets (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    version           INTEGER NOT NULL,
    title             TEXT NOT NULL,
    body              TEXT NOT NULL,
    source_platform   TEXT,
    source_channel    TEXT,
    source_message    TEXT,
    source_thread     TEXT,
    source_permalink  TEXT,
    source_text       TEXT,
    source_author     TEXT,
    source_author_name TEXT,
    reporter          TEXT NOT NULL,
    department        TEXT NOT NULL,
    priority          TEXT NOT NULL,
    tags              TEXT NOT NULL DEFAULT '[]',
    assignee          TEXT,
    status            TEXT NOT NULL,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    first_response_at TEXT,
    resolved_at       TEXT,
    closed_at         TEXT
);
-- A flagged message becomes at most one ticket.
CREATE UNIQUE INDEX tickets_source ON tickets (source_platform, source_channel, source_message)
    WHERE source_message IS NOT NULL;
CREATE INDEX tickets_status ON tickets (status, department);
CREATE INDEX tickets_created ON tickets (created_at);

CREATE TABLE ticket_events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id INTEGER NOT NULL REFERENCES tickets (id),
    at        TEXT NOT NULL,
    actor     TEXT,
    kind      TEXT NOT NULL,
    data      TEXT NOT NULL
);
CREATE INDEX ticket_events_ticket ON ticket_events (ticket_id, id);

CREATE TABLE inbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    dedupe_key      TEXT NOT NULL UNIQUE,
    platform        TEXT NOT NULL,
    payload         TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    lease_owner     TEXT,
    lease_until     TEXT,
    last_error      TEXT,
    received_at     TEXT NOT NULL,
    done_at         TEXT
);
CREATE INDEX inbox_due ON inbox (status, next_attempt_at);

CREATE TABLE outbox (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id           INTEGER REFERENCES tickets (id),
    platform            TEXT NOT NULL,
    kind                TEXT NOT NULL,
    target              TEXT NOT NULL,
    payload             TEXT NOT NULL,
    status              TEXT NOT NULL DEFAULT 'pending',
    attempts            INTEGER NOT NULL DEFAULT 0,
    next_attempt_at     TEXT NOT NULL,
    lease_owner         TEXT,
    lease_until         TEXT,
    platform_message_id TEXT,
    last_error          TEXT,
    created_at          TEXT NOT NULL,
    sent_at             TEXT
);
CREATE INDEX outbox_due ON outbox (status, platform, next_attempt_at);
CREATE INDEX outbox_ticket ON outbox (ticket_id, id);

CREATE TABLE people (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    slack_id   TEXT UNIQUE,
    discord_id TEXT UNIQUE,
    updated_at TEXT NOT NULL
);

CREATE TABLE kudos (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    giver        TEXT NOT NULL,
    giver_key    TEXT NOT NULL,
    receiver     TEXT NOT NULL,
    receiver_key TEXT NOT NULL,
    reason       TEXT NOT NULL,
    created_at   TEXT NOT NULL
);
CREATE INDEX kudos_created ON kudos (created_at);

CREATE TABLE metric_samples (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL,
    value       REAL NOT NULL,
    department  TEXT,
    note        TEXT,
    recorded_by TEXT,
    recorded_at TEXT NOT NULL
);
CREATE INDEX metric_samples_name ON metric_samples (name, recorded_at);

CREATE TABLE csat_responses (
    ticket_id  INTEGER PRIMARY KEY REFERENCES tickets (id),
    score      INTEGER NOT NULL CHECK (score BETWEEN 1 AND 5),
    comment    TEXT,
    responder  TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE schedule_fires (
    schedule   TEXT NOT NULL,
    fire_local TEXT NOT NULL,
    claimed_by TEXT NOT NULL,
    claimed_at TEXT NOT NULL,
    PRIMARY KEY (schedule, fire_local)
);
