-- Order keys: rows about the same thing are handled in order while different things go
-- concurrently. An inbox row's key names the platform message it is about (a flag, then its
-- edit, then a reply); an outbox row's key names its ticket (or the batch it was queued with)
-- and its destination (an edit after its alert, a digest's chart after its text). Rows queued
-- before this change keep the old rule: in order per ticket and platform.
ALTER TABLE inbox ADD COLUMN order_key TEXT;
ALTER TABLE outbox ADD COLUMN order_key TEXT;
UPDATE outbox SET order_key = 'ticket:' || ticket_id || ':' || platform WHERE ticket_id IS NOT NULL;
CREATE INDEX inbox_pending_order ON inbox (order_key, id) WHERE status = 'pending';
CREATE INDEX outbox_pending_order ON outbox (order_key, id) WHERE status = 'pending';
