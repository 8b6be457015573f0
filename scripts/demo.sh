#!/usr/bin/env bash
# `make demo`: sends signed sample webhooks to the hub `make run` started and shows what the
# sink received and what monitor counted.
set -euo pipefail
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/switchyard-target}"
bin="$CARGO_TARGET_DIR/debug"
# shellcheck disable=SC1091
source .demo.env
if ! (exec 3<>/dev/tcp/127.0.0.1/8080) 2>/dev/null; then
  echo "demo: nothing listens on 127.0.0.1:8080; start the hub with 'make run' first" >&2
  exit 1
fi
before=$(wc -l < .run/sink.log 2>/dev/null || echo 0)
"$bin/switchyard" send --ingest http://127.0.0.1:8080 --source demo
# Wait (at most 10 s) for the three expected deliveries to reach the sink.
for _ in $(seq 1 100); do
  now=$(wc -l < .run/sink.log)
  [ $((now - before)) -ge 3 ] && break
  sleep 0.1
done
echo "--- arrived at the sink (.run/sink.log):"
tail -n +"$((before + 1))" .run/sink.log
echo "--- monitor (http://127.0.0.1:9105/metrics):"
curl -s http://127.0.0.1:9105/metrics | grep '^switchyard_flow_events_total' || true
