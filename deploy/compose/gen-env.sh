#!/bin/sh
# Writes deploy/compose/.env with fresh random secrets (mode 600). Refuses to overwrite.
set -eu
out="$(dirname "$0")/.env"
[ -e "$out" ] && { echo "$out exists; not overwriting" >&2; exit 1; }
umask 077
rand() { head -c 24 /dev/urandom | base64 | tr -d '/+='; }
{
  echo "POSTGRES_PASSWORD=$(rand)"
  for s in INGEST TRANSFORM DEDUPE DELIVER MONITOR; do
    echo "SWITCHYARD_${s}_NATS_PASSWORD=$(rand)"
    echo "SWITCHYARD_${s}_DB_PASSWORD=$(rand)"
  done
  echo "SWITCHYARD_DEMO_SOURCE_SECRET=whsec_$(head -c 32 /dev/urandom | base64)"
  echo "SWITCHYARD_DEMO_SINK_SECRET=whsec_$(head -c 32 /dev/urandom | base64)"
} >"$out"
echo "wrote $out"
