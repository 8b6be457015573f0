-- Which source records and events built a golden record, for monitor's dashboard: one function
-- owned by dedupe (SECURITY DEFINER, resolving this schema's tables), answering ids, versions and
-- times for one record, never its fields. Where services run as separate roles, monitor may
-- execute it (deploy/compose/postgres-init.sh grants that by default privileges) without any
-- access to these tables. The version a processed event made and its source system are columns
-- of their own, so nothing reads them out of a message id.
ALTER TABLE processed_events ADD COLUMN version bigint, ADD COLUMN source_system text;

CREATE FUNCTION golden_lineage(golden uuid)
RETURNS TABLE (kind text, system text, object text, source_id text, event_id text,
               outcome text, version bigint, first_seen timestamptz, last_seen timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $fn$
    SELECT 'source'::text, c.system, c.object, c.external_id, ''::text, ''::text, NULL::int8,
           c.created_at, (SELECT max(p.processed_at) FROM processed_events p
                          WHERE p.golden_id = c.golden_id AND p.source_system = c.system)
    FROM crosswalk c WHERE c.golden_id = golden
    UNION ALL
    SELECT 'event'::text, coalesce(e.source_system, ''), ''::text, ''::text, e.event_id,
           e.outcome, e.version, e.processed_at, e.processed_at
    FROM (SELECT * FROM processed_events pe WHERE pe.golden_id = golden
          ORDER BY pe.processed_at DESC LIMIT 200) e
    UNION ALL
    SELECT 'record'::text, ''::text, 'contact'::text, ''::text, ''::text, ''::text, g.version,
           g.created_at, g.updated_at
    FROM golden_contacts g WHERE g.id = golden
    UNION ALL
    SELECT 'record'::text, ''::text, r.object, ''::text, ''::text, ''::text, r.version,
           r.created_at, r.updated_at
    FROM golden_records r WHERE r.id = golden
$fn$;
REVOKE ALL ON FUNCTION golden_lineage(uuid) FROM PUBLIC;
