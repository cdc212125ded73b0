-- The digest's knowledge part reads a period's knowledge-base entries of the audit log by
-- time. Only those entries are indexed, so no other audit write pays for it.
CREATE INDEX ticket_events_knowledge ON ticket_events (at)
    WHERE kind IN ('kb_suggested', 'kb_answered', 'kb_not_helpful');
