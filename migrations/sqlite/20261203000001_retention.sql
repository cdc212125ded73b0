-- Retention prunes finished rows by age in small batches; each batch finds its rows from these
-- indexes instead of scanning the table. Dead letters record when they failed, so
-- `outbox purge --failed --older-than` ages them from that moment.
ALTER TABLE outbox ADD COLUMN failed_at TEXT;
CREATE INDEX inbox_done_at ON inbox (done_at) WHERE status = 'done';
CREATE INDEX outbox_sent_at ON outbox (sent_at) WHERE status = 'sent';
CREATE INDEX schedule_fires_claimed ON schedule_fires (claimed_at);
CREATE INDEX sla_escalations_claimed ON sla_escalations (claimed_at);
