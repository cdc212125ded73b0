-- A reply in the thread of a ticket's alert (a ticket opened by command or by another system
-- has no flagged message) is matched to its ticket by the alert's message id.
CREATE INDEX outbox_alert_message ON outbox (platform_message_id) WHERE kind = 'alert';
