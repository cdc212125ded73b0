-- Saved replies (`/reply`): one shared answer per name, for one department or, with an empty
-- department, for every department. A department's reply is used before the global one of
-- the same name.
CREATE TABLE saved_replies (
    name       TEXT NOT NULL,
    department TEXT NOT NULL DEFAULT '',
    text       TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (name, department)
);
