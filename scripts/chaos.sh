#!/usr/bin/env bash
# `make chaos`: with a steady load running through the whole pipeline (five services as separate
# processes, NATS and PostgreSQL on this machine), inject one fault at a time — kill -9 of each
# service and its restart, a nats-server restart, a PostgreSQL restart, a destination answering
# 500, 429 or hanging past deliver's timeout — and recover. An independent ledger compares the ids
# the sender got a 2xx for with the records the destination received (and under which
# webhook-ids), plus what was dead-lettered, and prints one row per fault. Exit 1 when any record
# was lost or written twice.
set -euo pipefail
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/switchyard-target}"
cd "$(dirname "$0")/.."
bash scripts/deps.sh >&2
cargo build --release -p switchyard-ingest -p switchyard-transform -p switchyard-dedupe \
  -p switchyard-deliver -p switchyard-monitor -p switchyard-loadgen >&2
bin="$CARGO_TARGET_DIR/release"
rate="${CHAOS_RATE:-200}"

prefix="chaos$(date +%s)"
db="chaos_$(date +%s)"
psql -q "host=/var/run/postgresql user=$(id -un) dbname=postgres" -c "CREATE DATABASE $db"
export SWITCHYARD_BENCH_SECRET="whsec_$(head -c 32 /dev/urandom | base64 -w0)"
export SWITCHYARD_BENCH_SINK_SECRET="whsec_$(head -c 32 /dev/urandom | base64 -w0)"
config="$(mktemp --suffix .yaml)"
cat > "$config" <<YAML
prefix: $prefix
database: { url: "host=/var/run/postgresql user=$(id -un) dbname=$db", pool_size: 8 }
telemetry: { log_format: json, log_filter: warn }
ingest: { listen: "127.0.0.1:18080", ops_listen: "127.0.0.1:19101", max_lag: 0 }
transform: { ops_listen: "127.0.0.1:19102" }
dedupe: { ops_listen: "127.0.0.1:19103", default_region: US }
deliver: { ops_listen: "127.0.0.1:19104" }
monitor: { ops_listen: "127.0.0.1:19105" }
sources:
  - { name: bench, kind: standard-webhooks, secret_env: [SWITCHYARD_BENCH_SECRET] }
destinations:
  - { name: sink, kind: webhook, url: "http://127.0.0.1:18090/contacts", secret_env: SWITCHYARD_BENCH_SINK_SECRET, timeout: 2s }
flows:
  - { name: contacts-to-sink, object: contact, on: [created, updated], destination: sink, max_attempts: 100, retry_base: 200ms, retry_max: 2s }
YAML
services=(ingest transform dedupe deliver monitor)
declare -A pids ports=([ingest]=19101 [transform]=19102 [dedupe]=19103 [deliver]=19104 [monitor]=19105)
start() {
  "$bin/switchyard-$1" --config "$config" >> "/tmp/switchyard-chaos-$1.log" 2>&1 &
  pids[$1]=$!
}
ready() {
  for _ in $(seq 1 600); do
    curl -sf "http://127.0.0.1:${ports[$1]}/readyz" >/dev/null && return 0
    sleep 0.1
  done
  echo "chaos: $1 did not become ready" >&2
  return 1
}
cleanup() {
  for s in "${services[@]}"; do kill "${pids[$s]:-}" 2>/dev/null || true; done
  wait 2>/dev/null || true
  bash scripts/deps.sh >/dev/null 2>&1 || true
  "$bin/switchyard-loadgen" purge --prefix "$prefix" || true
  psql -q "host=/var/run/postgresql user=$(id -un) dbname=postgres" -c "DROP DATABASE IF EXISTS $db" || true
  rm -f "$config"
}
trap cleanup EXIT
for s in "${services[@]}"; do start "$s"; done
for s in "${services[@]}"; do ready "$s"; done

dead_lettered() {
  curl -sf http://127.0.0.1:19105/metrics 2>/dev/null \
    | awk '/^switchyard_flow_events_total\{flow="contacts-to-sink",outcome="dead_lettered"\}/ {print $2}' \
    | tail -1 | awk '{print ($1 == "" ? 0 : $1)}'
}
sink() { curl -sf -X POST --data "$1" http://127.0.0.1:18090/control >/dev/null || true; }

# nats-server drains before it exits on SIGTERM: wait until it is gone (SIGKILL after 10 s), so
# that deps.sh really starts a new one instead of finding the old one still listening.
stop_nats() {
  local pids_nats
  pids_nats="$(pgrep -x nats-server || true)"
  [ -n "$pids_nats" ] || return 0
  kill -TERM $pids_nats 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 $pids_nats 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL $pids_nats 2>/dev/null || true
  while (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; do sleep 0.1; done
}

# fault name → how to inject it, and how to recover.
inject() {
  case "$1" in
    none) ;;
    kill-*) kill -9 "${pids[${1#kill-}]}" ;;
    nats-restart) stop_nats ;;
    postgres-restart) pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main stop -m fast ;;
    destination-500) sink 500 ;;
    destination-429) sink 429 ;;
    destination-hang) sink hang ;;
  esac
}
recover() {
  case "$1" in
    kill-*) wait "${pids[${1#kill-}]}" 2>/dev/null || true; start "${1#kill-}"; ready "${1#kill-}" ;;
    nats-restart|postgres-restart) bash scripts/deps.sh >/dev/null ;;
    destination-*) sink ok ;;
  esac
}

faults=(none kill-ingest kill-transform kill-dedupe kill-deliver kill-monitor nats-restart
  postgres-restart destination-500 destination-429 destination-hang)
results="$(mktemp)"
status=0
for fault in "${faults[@]}"; do
  before="$(dead_lettered)"
  out="$(mktemp)"
  "$bin/switchyard-loadgen" ingest --url http://127.0.0.1:18080/v1/webhooks/bench \
    --rate "$rate" --duration 16s --connections 32 --sink-listen 127.0.0.1:18090 --drain 180s \
    --label "$fault" > "$out" 2>&1 &
  load=$!
  sleep 5
  inject "$fault"
  sleep 4
  recover "$fault"
  wait "$load" || true
  after="$(dead_lettered)"
  line="$(grep 'end to end' "$out" || echo "$fault end to end: no report")"
  field() { echo "$line" | grep -Eo "$1=[0-9]+" | head -1 | cut -d= -f2; }
  accepted="$(field accepted)"; delivered="$(field delivered)"; missing="$(field missing)"
  duplicates="$(field duplicates)"; redeliveries="$(field redeliveries)"
  dlq="$(awk "BEGIN {print ${after:-0} - ${before:-0}}")"
  # Lost: accepted, never delivered and not in the dead-letter queue either.
  lost="$(awk "BEGIN {l = ${missing:-1} - $dlq; print (l < 0 ? 0 : l)}")"
  printf '%-18s %9s %9s %6s %6s %10s %12s\n' "$fault" "${accepted:-?}" "${delivered:-?}" "$dlq" \
    "$lost" "${duplicates:-?}" "${redeliveries:-?}" >> "$results"
  if [ "${lost:-1}" != 0 ] || [ "${duplicates:-1}" != 0 ]; then status=1; fi
  rm -f "$out"
done
echo "chaos: $(date -u +%Y-%m-%dT%H:%MZ) commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown), ${rate}/s offered per run"
printf '%-18s %9s %9s %6s %6s %10s %12s\n' fault accepted delivered dlq lost duplicates redeliveries
cat "$results"
rm -f "$results"
exit "$status"
