-- Digests follow each ticket's changes of status, department, priority and assignee. They are
-- kept on the ticket too, as text: one `at|kind|from|to;` per change (at as fixed-width UTC
-- text with milliseconds, accounts as `platform:id`, an empty field for none), appended in the
-- same transaction as the audit log, so a digest reads one short column per ticket instead of
-- every audit-log entry. Filled here from the audit log for existing tickets.
ALTER TABLE tickets ADD COLUMN history TEXT NOT NULL DEFAULT '';
UPDATE tickets SET history = h.steps FROM (
    SELECT e.ticket_id, string_agg(
        to_char(e.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') || '|' || e.kind || '|' ||
        coalesce(CASE e.kind WHEN 'assigned' THEN (e.data->'from'->>'platform') || ':'
            || (e.data->'from'->>'id') ELSE e.data->>'from' END, '') || '|' ||
        coalesce(CASE e.kind WHEN 'assigned' THEN (e.data->'to'->>'platform') || ':'
            || (e.data->'to'->>'id') ELSE e.data->>'to' END, '') || ';',
        '' ORDER BY e.id) AS steps
    FROM ticket_events e
    WHERE e.kind IN ('status_changed', 'routed', 'priority_changed', 'assigned')
    GROUP BY e.ticket_id) h
WHERE h.ticket_id = tickets.id;
