#!/bin/sh
# One PostgreSQL role per service, each owning one schema and seeing nothing else: migrations
# create each service's tables in its own schema (search_path), so no service can read or write
# another's tables. Passwords come from the environment (deploy/compose/.env), never from here.
set -eu
# Role names: switchyard_<service> (SWITCHYARD_ROLE_PREFIX changes the prefix, e.g. per tenant).
prefix="${SWITCHYARD_ROLE_PREFIX:-switchyard_}"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<SQL
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
REVOKE ALL ON DATABASE "$POSTGRES_DB" FROM PUBLIC;
SQL
for svc in ingest transform dedupe deliver monitor; do
  var="SWITCHYARD_$(echo "$svc" | tr a-z A-Z)_DB_PASSWORD"
  eval "password=\${$var}"
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v role="$prefix$svc" -v schema="$svc" -v password="$password" -v db="$POSTGRES_DB" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
GRANT CONNECT ON DATABASE :"db" TO :"role";
CREATE SCHEMA :"schema" AUTHORIZATION :"role";
ALTER ROLE :"role" SET search_path = :"schema";
SQL
done
# Monitor's dashboard shows which source records and events built a golden record. Monitor reads
# that through one function owned by dedupe's role (SECURITY DEFINER), which answers only ids,
# versions and times for one record: monitor gets no access to dedupe's tables, whose fields
# hold personal data, and can write none of them. PL/pgSQL resolves the tables when called, so
# the function can exist before dedupe's migrations have made them. Keep it in step with
# LINEAGE_TABLES in services/monitor/src/dashboard.rs.
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v dedupe="${prefix}dedupe" -v monitor="${prefix}monitor" <<'SQL'
CREATE FUNCTION dedupe.golden_lineage(golden uuid)
RETURNS TABLE (kind text, system text, object text, source_id text, event_id text,
               outcome text, version bigint, first_seen timestamptz, last_seen timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = dedupe, pg_temp AS $fn$
BEGIN
  RETURN QUERY
    SELECT 'source'::text, c.system, c.object, c.external_id, ''::text, ''::text, NULL::int8,
           c.created_at, (SELECT max(p.processed_at) FROM processed_events p
                          WHERE p.golden_id = c.golden_id
                            AND starts_with(p.event_id, c.system || ':'))
    FROM crosswalk c WHERE c.golden_id = golden
    UNION ALL
    SELECT 'event'::text, split_part(e.event_id, ':', 1), ''::text, ''::text, e.event_id,
           e.outcome, CASE WHEN split_part(e.change_msg_id, ':', 3) ~ '^[0-9]+$'
                           THEN split_part(e.change_msg_id, ':', 3)::int8 END,
           e.processed_at, e.processed_at
    FROM (SELECT * FROM processed_events pe WHERE pe.golden_id = golden
          ORDER BY pe.processed_at DESC LIMIT 200) e
    UNION ALL
    SELECT 'record'::text, ''::text, 'contact'::text, ''::text, ''::text, ''::text, g.version,
           g.created_at, g.updated_at
    FROM golden_contacts g WHERE g.id = golden
    UNION ALL
    SELECT 'record'::text, ''::text, r.object, ''::text, ''::text, ''::text, r.version,
           r.created_at, r.updated_at
    FROM golden_records r WHERE r.id = golden;
END
$fn$;
ALTER FUNCTION dedupe.golden_lineage(uuid) OWNER TO :"dedupe";
REVOKE ALL ON FUNCTION dedupe.golden_lineage(uuid) FROM PUBLIC;
GRANT USAGE ON SCHEMA dedupe TO :"monitor";
GRANT EXECUTE ON FUNCTION dedupe.golden_lineage(uuid) TO :"monitor";
SQL
