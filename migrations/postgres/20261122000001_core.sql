-- Core schema, the PostgreSQL twin of migrations/sqlite/20261122000001_core.sql: tickets and
-- their audit log, inbox, outbox, people, kudos, metric samples, CSAT responses and schedule
-- fires. Several instances share one database: claims use leases and SKIP LOCKED.

CREATE TABLE tickets (
    id                BIGSERIAL PRIMARY KEY,
    version           BIGINT NOT NULL,
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
    tags              JSONB NOT NULL DEFAULT '[]',
    assignee          TEXT,
    status            TEXT NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL,
    first_response_at TIMESTAMPTZ,
    resolved_at       TIMESTAMPTZ,
    closed_at         TIMESTAMPTZ
);
-- A flagged message becomes at most one ticket.
CREATE UNIQUE INDEX tickets_source ON tickets (source_platform, source_channel, source_message)
    WHERE source_message IS NOT NULL;
CREATE INDEX tickets_status ON tickets (status, department);
CREATE INDEX tickets_created ON tickets (created_at);

CREATE TABLE ticket_events (
    id        BIGSERIAL PRIMARY KEY,
    ticket_id BIGINT NOT NULL REFERENCES tickets (id),
    at        TIMESTAMPTZ NOT NULL,
    actor     TEXT,
    kind      TEXT NOT NULL,
    data      JSONB NOT NULL
);
CREATE INDEX ticket_events_ticket ON ticket_events (ticket_id, id);

CREATE TABLE inbox (
    id              BIGSERIAL PRIMARY KEY,
    dedupe_key      TEXT NOT NULL UNIQUE,
    platform        TEXT NOT NULL,
    payload         JSONB NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending',
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    lease_owner     TEXT,
    lease_until     TIMESTAMPTZ,
    last_error      TEXT,
    received_at     TIMESTAMPTZ NOT NULL,
    done_at         TIMESTAMPTZ
);
CREATE INDEX inbox_due ON inbox (status, next_attempt_at);

CREATE TABLE outbox (
    id                  BIGSERIAL PRIMARY KEY,
    ticket_id           BIGINT REFERENCES tickets (id),
    platform            TEXT NOT NULL,
    kind                TEXT NOT NULL,
    target              TEXT NOT NULL,
    payload             JSONB NOT NULL,
    status              TEXT NOT NULL DEFAULT 'pending',
    attempts            BIGINT NOT NULL DEFAULT 0,
    next_attempt_at     TIMESTAMPTZ NOT NULL,
    lease_owner         TEXT,
    lease_until         TIMESTAMPTZ,
    platform_message_id TEXT,
    last_error          TEXT,
    created_at          TIMESTAMPTZ NOT NULL,
    sent_at             TIMESTAMPTZ
);
CREATE INDEX outbox_due ON outbox (status, platform, next_attempt_at);
CREATE INDEX outbox_ticket ON outbox (ticket_id, id);

CREATE TABLE people (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    slack_id   TEXT UNIQUE,
    discord_id TEXT UNIQUE,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE kudos (
    id           BIGSERIAL PRIMARY KEY,
    giver        TEXT NOT NULL,
    giver_key    TEXT NOT NULL,
    receiver     TEXT NOT NULL,
    receiver_key TEXT NOT NULL,
    reason       TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX kudos_created ON kudos (created_at);

CREATE TABLE metric_samples (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT NOT NULL,
    value       DOUBLE PRECISION NOT NULL,
    department  TEXT,
    note        TEXT,
    recorded_by TEXT,
    recorded_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX metric_samples_name ON metric_samples (name, recorded_at);

CREATE TABLE csat_responses (
    ticket_id  BIGINT PRIMARY KEY REFERENCES tickets (id),
    score      SMALLINT NOT NULL CHECK (score BETWEEN 1 AND 5),
    comment    TEXT,
    responder  TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE schedule_fires (
    schedule   TEXT NOT NULL,
    fire_local TEXT NOT NULL,
    claimed_by TEXT NOT NULL,
    claimed_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (schedule, fire_local)
);
