-- Replies are matched to their ticket by what they answer: a flagged message inside a thread
-- by the thread (several tickets may share one), and the bot's own posts (a ticket's alert,
-- a reminder, a saved reply) by their message id.
CREATE INDEX tickets_source_thread ON tickets (source_channel, source_thread)
    WHERE source_thread IS NOT NULL;
CREATE INDEX outbox_platform_message ON outbox (platform_message_id)
    WHERE platform_message_id IS NOT NULL;
