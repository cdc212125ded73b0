-- The flag limit ([flagging] limit per limit_window) counts, per person, the tickets their
-- flags opened in the window: the creation events by their accounts since a moment.
CREATE INDEX ticket_events_created_by ON ticket_events (actor, at) WHERE kind = 'created';
