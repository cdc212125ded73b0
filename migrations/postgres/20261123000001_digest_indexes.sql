-- Digest reads: tickets done (resolved, else closed) after a moment or still active, CSAT
-- answers and metric values by time; the same per department for department digests.
CREATE INDEX tickets_done ON tickets ((COALESCE(resolved_at, closed_at)));
CREATE INDEX csat_responses_created ON csat_responses (created_at);
CREATE INDEX metric_samples_recorded ON metric_samples (recorded_at);
CREATE INDEX tickets_department_created ON tickets (department, created_at);
CREATE INDEX tickets_department_done ON tickets (department, (COALESCE(resolved_at, closed_at)));
