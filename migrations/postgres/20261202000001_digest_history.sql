-- Digests take every figure as it stood at a period's end. A metric value counts in the period
-- it was measured in, but only once it had arrived: a value sent late for a past period never
-- changes a digest already posted. Values recorded before this change count as on time.
ALTER TABLE metric_samples ADD COLUMN received_at TIMESTAMPTZ;
UPDATE metric_samples SET received_at = recorded_at;
ALTER TABLE metric_samples ALTER COLUMN received_at SET NOT NULL;
-- A department's digest also reads the tickets moved between departments since its previous
-- period began (they may have been its own at a period's end).
CREATE INDEX ticket_events_routed ON ticket_events (at) WHERE kind = 'routed';
