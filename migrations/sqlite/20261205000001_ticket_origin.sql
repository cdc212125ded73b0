-- How each ticket came to be (flag, shortcut, command, api, alertmanager, grafana) as a
-- column, so digests can count tickets other systems opened without reading the audit log.
-- Filled here from each ticket's `created` entry.
ALTER TABLE tickets ADD COLUMN origin TEXT NOT NULL DEFAULT 'flag';
UPDATE tickets SET origin = (
    SELECT json_extract(e.data, '$.origin') FROM ticket_events e
    WHERE e.ticket_id = tickets.id AND e.kind = 'created'
    ORDER BY e.id LIMIT 1)
WHERE EXISTS (SELECT 1 FROM ticket_events e
    WHERE e.ticket_id = tickets.id AND e.kind = 'created'
      AND json_extract(e.data, '$.origin') IS NOT NULL);

-- A status change another system made (its actor an automation, `platform:automation:NAME`)
-- is marked `automation` in the history's middle field, so digests can count auto-resolved
-- tickets. Histories written before this marker are filled again from the audit log.
UPDATE tickets SET history = (
    SELECT group_concat(
        e.at || '|' || e.kind || '|' ||
        ifnull(CASE
            WHEN e.kind = 'status_changed' AND e.actor LIKE '%:automation:%' THEN 'automation'
            WHEN e.kind = 'assigned' THEN json_extract(e.data, '$.from.platform')
                || ':' || json_extract(e.data, '$.from.id')
            ELSE json_extract(e.data, '$.from') END, '') || '|' ||
        ifnull(CASE e.kind WHEN 'assigned' THEN json_extract(e.data, '$.to.platform')
            || ':' || json_extract(e.data, '$.to.id')
            ELSE json_extract(e.data, '$.to') END, '') || ';',
        '' ORDER BY e.id)
    FROM ticket_events e
    WHERE e.ticket_id = tickets.id
      AND e.kind IN ('status_changed', 'routed', 'priority_changed', 'assigned'))
WHERE EXISTS (SELECT 1 FROM ticket_events e WHERE e.ticket_id = tickets.id
    AND e.kind = 'status_changed' AND e.actor LIKE '%:automation:%');
