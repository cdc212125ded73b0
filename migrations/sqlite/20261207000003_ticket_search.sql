-- Full-text search of tickets (title and body) with SQLite's FTS5: words lowercased and
-- stemmed (porter), diacritics folded. An external-content index over `tickets`, kept in step
-- by triggers, filled here from the tickets already stored.
CREATE VIRTUAL TABLE tickets_fts USING fts5(
    title, body, content = 'tickets', content_rowid = 'id',
    tokenize = 'porter unicode61 remove_diacritics 2'
);
INSERT INTO tickets_fts (rowid, title, body) SELECT id, title, body FROM tickets;
CREATE TRIGGER tickets_fts_insert AFTER INSERT ON tickets BEGIN
    INSERT INTO tickets_fts (rowid, title, body) VALUES (new.id, new.title, new.body);
END;
-- Every change of a ticket writes its whole row: only a changed title or body re-indexes it.
CREATE TRIGGER tickets_fts_update AFTER UPDATE OF title, body ON tickets
    WHEN old.title IS NOT new.title OR old.body IS NOT new.body BEGIN
    INSERT INTO tickets_fts (tickets_fts, rowid, title, body)
        VALUES ('delete', old.id, old.title, old.body);
    INSERT INTO tickets_fts (rowid, title, body) VALUES (new.id, new.title, new.body);
END;
CREATE TRIGGER tickets_fts_delete AFTER DELETE ON tickets BEGIN
    INSERT INTO tickets_fts (tickets_fts, rowid, title, body)
        VALUES ('delete', old.id, old.title, old.body);
END;
