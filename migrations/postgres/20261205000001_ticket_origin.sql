-- How each ticket came to be (flag, shortcut, command, api, alertmanager, grafana) as a
-- column, so digests can count tickets other systems opened without reading the audit log.
-- Filled here from each ticket's `created` entry.
ALTER TABLE tickets ADD COLUMN origin TEXT NOT NULL DEFAULT 'flag';
UPDATE tickets t SET origin = e.data->>'origin'
FROM ticket_events e
WHERE e.ticket_id = t.id AND e.kind = 'created' AND e.data->>'origin' IS NOT NULL;

-- A status change another system made (its actor an automation, `platform:automation:NAME`)
-- is marked `automation` in the history's middle field, so digests can count auto-resolved
-- tickets. Histories written before this marker are filled again from the audit log.
UPDATE tickets SET history = h.steps FROM (
    SELECT e.ticket_id, string_agg(
        to_char(e.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') || '|' || e.kind || '|' ||
        coalesce(CASE
            WHEN e.kind = 'status_changed' AND e.actor LIKE '%:automation:%' THEN 'automation'
            WHEN e.kind = 'assigned' THEN (e.data->'from'->>'platform') || ':'
                || (e.data->'from'->>'id')
            ELSE e.data->>'from' END, '') || '|' ||
        coalesce(CASE e.kind WHEN 'assigned' THEN (e.data->'to'->>'platform') || ':'
            || (e.data->'to'->>'id') ELSE e.data->>'to' END, '') || ';',
        '' ORDER BY e.id) AS steps
    FROM ticket_events e
    WHERE e.kind IN ('status_changed', 'routed', 'priority_changed', 'assigned')
    GROUP BY e.ticket_id
    HAVING bool_or(e.kind = 'status_changed' AND e.actor LIKE '%:automation:%')) h
WHERE h.ticket_id = tickets.id;
