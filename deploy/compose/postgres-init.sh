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
