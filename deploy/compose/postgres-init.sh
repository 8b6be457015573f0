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
# Monitor's dashboard shows which source records and events built a golden record, through one
# function dedupe's migrations make (golden_lineage, SECURITY DEFINER, owned by dedupe's role):
# it answers only ids, versions and times for one record, so monitor gets no access to dedupe's
# tables, whose fields hold personal data, and can write none of them. Functions dedupe's role
# creates in its schema may be executed by monitor's role and nobody else.
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v dedupe="${prefix}dedupe" -v monitor="${prefix}monitor" <<'SQL'
ALTER DEFAULT PRIVILEGES FOR ROLE :"dedupe" REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
ALTER DEFAULT PRIVILEGES FOR ROLE :"dedupe" IN SCHEMA dedupe GRANT EXECUTE ON FUNCTIONS TO :"monitor";
GRANT USAGE ON SCHEMA dedupe TO :"monitor";
SQL
