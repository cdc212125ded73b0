-- Full-text search of tickets (title and body) with PostgreSQL's own: an English tsvector of
-- both, indexed by expression (no new column, no table rewrite); queries use the same
-- expression so the index answers them.
CREATE INDEX tickets_search ON tickets
    USING GIN (to_tsvector('english', title || ' ' || body));
