-- When staff last changed each ticket (claimed, replied, moved it on): follow-ups nudge a
-- ticket nobody on staff has acted on for a while, whatever its reporter or other systems did.
-- Tickets from before start from their last change.
ALTER TABLE tickets ADD COLUMN staff_at TEXT;
UPDATE tickets SET staff_at = updated_at WHERE updated_at > created_at;
