#!/usr/bin/env bash
# `make bench`: measures ingest alone (verified webhooks into JetStream, file storage), dedupe
# alone (canonical contacts resolved into golden records in PostgreSQL) and the whole pipeline end
# to end (webhook → ingest → transform → dedupe → deliver → a local sink) on this machine, with
# NATS and PostgreSQL on the same machine, and prints the figures with the machine, date and
# commit, ready for docs/benchmarks.md.
#
# Shorter runs (e.g. while profiling): BENCH_SECTIONS picks the sections (default
# "ingest dedupe e2e"), BENCH_E2E_SECONDS sets the length of each end-to-end run (default 20; the
# past-saturation runs take three quarters of it) and BENCH_DEDUPE_COUNT the contacts preloaded
# for dedupe (default 60000, half of them new people); BENCH_KNEE_RATES and BENCH_KNEE_SECONDS
# the offered rates and run length of the end-to-end knee sweep; BENCH_BIN runs the binaries
# found there instead of building them.
set -euo pipefail
sections=" ${BENCH_SECTIONS:-ingest dedupe e2e} "
e2e_seconds="${BENCH_E2E_SECONDS:-20}"
dedupe_count="${BENCH_DEDUPE_COUNT:-60000}"
ingest=""
db=""
dedupe_config=""
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/switchyard-target}"
cd "$(dirname "$0")/.."
target="$CARGO_TARGET_DIR"
# BENCH_BIN: run binaries already built there (e.g. a copy of an earlier build, to compare).
bin="${BENCH_BIN:-$target/release}"
if [[ -z "${BENCH_BIN:-}" ]]; then
  cargo build --release -p switchyard-ingest -p switchyard-transform -p switchyard-dedupe \
    -p switchyard-deliver -p switchyard-monitor -p switchyard-loadgen >&2
fi

prefix="bench$(date +%s)"
export SWITCHYARD_BENCH_SECRET="whsec_$(head -c 32 /dev/urandom | base64 -w0)"
config="$(mktemp --suffix .yaml)"
cat > "$config" <<YAML
prefix: $prefix
database: { url: "host=/var/run/postgresql user=$(id -un) dbname=switchyard", pool_size: 16 }
telemetry: { log_format: json, log_filter: warn }
ingest: { listen: "127.0.0.1:18080", ops_listen: "127.0.0.1:19101", max_lag: 0 }
sources:
  - { name: bench, kind: standard-webhooks, secret_env: [SWITCHYARD_BENCH_SECRET] }
YAML
cleanup() {
  kill "$ingest" 2>/dev/null || true
  wait "$ingest" 2>/dev/null || true
  "$bin/switchyard-loadgen" purge --prefix "$prefix" || true
  rm -f "$config"
}
trap cleanup EXIT
url=http://127.0.0.1:18080/v1/webhooks/bench
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)  commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)  nats-server: $(nats-server --version 2>/dev/null || /usr/sbin/nats-server --version)"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
if [[ "$sections" == *" ingest "* ]]; then
"$bin/switchyard-ingest" --config "$config" > /tmp/switchyard-bench-ingest.log 2>&1 &
ingest=$!
for _ in $(seq 1 100); do
  curl -sf http://127.0.0.1:19101/readyz >/dev/null && break
  sleep 0.1
done
"$bin/switchyard-loadgen" ingest --url "$url" --rate 0 --duration 3s --connections 32 --label warm-up >/dev/null
"$bin/switchyard-loadgen" ingest --url "$url" --rate 0 --duration 15s --connections 64 --label "ingest max (64 connections)"
"$bin/switchyard-loadgen" ingest --url "$url" --rate 0 --duration 15s --connections 128 --label "ingest max (128 connections)"
"$bin/switchyard-loadgen" ingest --url "$url" --rate 1000 --duration 15s --connections 64 --label "ingest at 1000/s"
rss=$(awk '/VmRSS/ {print $2}' "/proc/$ingest/status")
echo "ingest RSS after the runs: $((rss / 1024)) MiB"

# Dedupe: preload contacts while it is stopped (it creates its consumer first), then time it.
kill "$ingest" 2>/dev/null || true
wait "$ingest" 2>/dev/null || true
fi

if [[ "$sections" == *" dedupe "* ]]; then
db="bench_dedupe_$(date +%s)"
psql -q "host=/var/run/postgresql user=$(id -un) dbname=postgres" -c "CREATE DATABASE $db"
dedupe_config="$(mktemp --suffix .yaml)"
cat > "$dedupe_config" <<YAML
prefix: $prefix
database: { url: "host=/var/run/postgresql user=$(id -un) dbname=$db", pool_size: 16 }
telemetry: { log_format: json, log_filter: warn }
dedupe: { ops_listen: "127.0.0.1:19103", default_region: US }
YAML
start_dedupe() {
  "$bin/switchyard-dedupe" --config "$dedupe_config" >> /tmp/switchyard-bench-dedupe.log 2>&1 &
  dedupe=$!
  for _ in $(seq 1 300); do
    curl -sf http://127.0.0.1:19103/readyz >/dev/null && return
    sleep 0.1
  done
  echo "bench: dedupe did not become ready; see /tmp/switchyard-bench-dedupe.log" >&2
  exit 1
}
stop_dedupe() {
  kill "$dedupe" 2>/dev/null || true
  wait "$dedupe" 2>/dev/null || true
}
trap 'stop_dedupe; cleanup; rm -f "$dedupe_config"; psql -q "host=/var/run/postgresql user=$(id -un) dbname=postgres" -c "DROP DATABASE IF EXISTS $db" || true' EXIT
start_dedupe
stop_dedupe
"$bin/switchyard-loadgen" dedupe-load --prefix "$prefix" --count "$dedupe_count" --people "$((dedupe_count / 2))"
start_dedupe
"$bin/switchyard-loadgen" dedupe-drain --prefix "$prefix" --label "dedupe: $((dedupe_count / 2)) new contacts then as many updates"
rss=$(awk '/VmRSS/ {print $2}' "/proc/$dedupe/status")
echo "dedupe RSS after the run: $((rss / 1024)) MiB"
stop_dedupe
fi
[[ "$sections" == *" e2e "* ]] || exit 0

# End to end: all five services as separate processes, one flow delivering every contact to the
# load generator's own sink, which times each delivery from the moment its webhook was sent.
e2e_prefix="e2e$(date +%s)"
e2e_db="bench_e2e_$(date +%s)"
psql -q "host=/var/run/postgresql user=$(id -un) dbname=postgres" -c "CREATE DATABASE $e2e_db"
export SWITCHYARD_BENCH_SINK_SECRET="whsec_$(head -c 32 /dev/urandom | base64 -w0)"
e2e_config="$(mktemp --suffix .yaml)"
cat > "$e2e_config" <<YAML
prefix: $e2e_prefix
database: { url: "host=/var/run/postgresql user=$(id -un) dbname=$e2e_db", pool_size: 16 }
telemetry: { log_format: json, log_filter: warn }
ingest: { listen: "127.0.0.1:18080", ops_listen: "127.0.0.1:19101", max_lag: 20000 }
transform: { ops_listen: "127.0.0.1:19102" }
dedupe: { ops_listen: "127.0.0.1:19103", default_region: US }
deliver: { ops_listen: "127.0.0.1:19104" }
monitor: { ops_listen: "127.0.0.1:19105" }
sources:
  - { name: bench, kind: standard-webhooks, secret_env: [SWITCHYARD_BENCH_SECRET] }
destinations:
  - { name: sink, kind: webhook, url: "http://127.0.0.1:18090/contacts", secret_env: SWITCHYARD_BENCH_SINK_SECRET, timeout: 10s }
flows:
  - { name: contacts-to-sink, object: contact, on: [created, updated], destination: sink, max_attempts: 8 }
YAML
pids=()
for service in ingest transform dedupe deliver monitor; do
  "$bin/switchyard-$service" --config "$e2e_config" >> "/tmp/switchyard-bench-$service.log" 2>&1 &
  pids+=("$!")
done
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; cleanup; "$bin/switchyard-loadgen" purge --prefix "$e2e_prefix" || true; rm -f ${dedupe_config:+"$dedupe_config"} "$e2e_config"; for d in $db "$e2e_db"; do psql -q "host=/var/run/postgresql user=$(id -un) dbname=postgres" -c "DROP DATABASE IF EXISTS $d" || true; done' EXIT
for port in 19101 19102 19103 19104 19105; do
  for _ in $(seq 1 300); do
    curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break
    sleep 0.1
  done
done
rss_line() {
  local line="$1:"
  for i in "${!pids[@]}"; do
    local service=(ingest transform dedupe deliver monitor)
    line+=" ${service[$i]}=$(( $(awk '/VmRSS/ {print $2}' "/proc/${pids[$i]}/status") / 1024 ))MiB"
  done
  echo "$line"
}
rss_line "idle RSS"
cpu_ticks() { for p in "${pids[@]}"; do awk '{print $14 + $15}' "/proc/$p/stat"; done | paste -sd' '; }
e2e() { # label, then loadgen arguments
  local label="$1"; shift
  local before after
  before=($(cpu_ticks))
  "$bin/switchyard-loadgen" ingest --url "$url_e2e" --sink-listen 127.0.0.1:18090 --label "$label" "$@"
  after=($(cpu_ticks))
  local line="$label CPU seconds:"
  local service=(ingest transform dedupe deliver monitor)
  for i in "${!pids[@]}"; do
    line+=" ${service[$i]}=$(awk "BEGIN {printf \"%.1f\", (${after[$i]} - ${before[$i]}) / $(getconf CLK_TCK)}")"
  done
  echo "$line"
}
url_e2e=http://127.0.0.1:18080/v1/webhooks/bench
e2e "e2e at 1000/s" --rate 1000 --duration "${e2e_seconds}s" --connections 64
# The knee: the offered rate stepped up until the end-to-end p99 climbs past three times its value
# at the lowest rate, or delivery falls 5 % behind the offer; the sweep stops there (past it a run
# only builds a backlog).
knee_seconds="${BENCH_KNEE_SECONDS:-8}"
below="" knee="" base=""
for rate in ${BENCH_KNEE_RATES:-500 1000 1500 2000 2500 3000 3500 4000}; do
  line=$("$bin/switchyard-loadgen" ingest --url "$url_e2e" --sink-listen 127.0.0.1:18090 \
    --label "knee sweep at $rate/s" --rate "$rate" --duration "${knee_seconds}s" --connections 128 |
    grep "end to end")
  delivered=$(sed -E 's/.* delivered=[0-9]+ \(([0-9]+)\/s\).*/\1/' <<<"$line")
  read -r p50 p99 < <(sed -E 's/.* e2e_ms p50=([0-9.]+) p90=[0-9.]+ p99=([0-9.]+) .*/\1 \2/' <<<"$line")
  echo "knee sweep: offered ${rate}/s, delivered ${delivered}/s, e2e p50 ${p50} ms, p99 ${p99} ms"
  base="${base:-$p99}"
  if awk -v p99="$p99" -v base="$base" -v got="$delivered" -v rate="$rate" \
    'BEGIN { exit !(p99 > 3 * base || got < 0.95 * rate) }'; then
    knee="$rate"
    break
  fi
  below="$rate"
done
if [[ -n "$knee" ]]; then
  echo "knee: end-to-end latency climbs between ${below:-0}/s and ${knee}/s offered"
else
  echo "knee: none up to ${below}/s offered"
fi
e2e "e2e max (64 connections)" --rate 0 --duration "${e2e_seconds}s" --connections 64
e2e "e2e past saturation (offered 12000/s)" --rate 12000 --duration "$((e2e_seconds * 3 / 4))s" --connections 256
# The same offer from a sender that honours Retry-After, as webhook senders do: it holds its
# sends for the second it is told, so the refusals stop taking the cores the pipeline needs.
e2e "e2e past saturation, sender honouring Retry-After (offered 12000/s)" --rate 12000 --duration "$((e2e_seconds * 3 / 4))s" --connections 256 --honour-retry-after
rss_line "RSS after the runs"
