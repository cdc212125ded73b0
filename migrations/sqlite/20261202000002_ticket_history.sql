-- Digests follow each ticket's changes of status, department, priority and assignee. They are
-- kept on the ticket too, as text: one `at|kind|from|to;` per change (at as fixed-width UTC
-- text, accounts as `platform:id`, an empty field for none), appended in the same transaction
-- as the audit log, so a digest reads one short column per ticket instead of every audit-log
-- entry. Filled here from the audit log for existing tickets.
ALTER TABLE tickets ADD COLUMN history TEXT NOT NULL DEFAULT '';
UPDATE tickets SET history = (
    SELECT group_concat(
        e.at || '|' || e.kind || '|' ||
        ifnull(CASE e.kind WHEN 'assigned' THEN json_extract(e.data, '$.from.platform')
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
    AND e.kind IN ('status_changed', 'routed', 'priority_changed', 'assigned'));
