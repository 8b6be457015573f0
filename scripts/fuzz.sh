#!/usr/bin/env bash
# `make fuzz`: runs every cargo-fuzz target (fuzz/fuzz_targets) for FUZZ_SECONDS each (default 60)
# from a corpus seeded with the vendors' published samples and the built-in mapping files, and
# prints executions and findings per target. cargo-fuzz is installed when missing; libFuzzer's
# instrumentation needs unstable flags, which the stable toolchain accepts with RUSTC_BOOTSTRAP=1.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-60}"
vendor=testdata/vendor
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-/var/tmp/switchyard-fuzz-target}"
export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked >&2
fi

corpus=fuzz/corpus
mkdir -p "$corpus"/{ingest_verify,ingest_parse,transform_map,mapping_file}
# ingest_parse: one byte for the source kind (order of fuzz/fuzz_targets/common.rs KINDS), then
# the body as that vendor sends it.
seed() { # kind-index file
  [ -f "$2" ] || return 0
  { printf "\\x$(printf %02x "$1")"; cat "$2"; } > "$corpus/ingest_parse/$(basename "$2").k$1"
}
for f in "$vendor"/samples/hubspot/webhook-batch*.json; do seed 1 "$f"; done
for f in "$vendor"/samples/stripe/*.json; do seed 2 "$f"; done
for f in "$vendor"/samples/quickbooks/*.json; do seed 4 "$f"; done
for f in "$vendor"/samples/xero/*.json; do seed 5 "$f"; done
find "$vendor/samples" -name '*.json' ! -name '*signature*' ! -name '*vector*' \
  -exec cp {} "$corpus/transform_map/" \;
cp services/transform/mappings/*.yaml "$corpus/mapping_file/"

printf '%-16s %12s %8s %s\n' target executions seconds findings
status=0
for target in ingest_verify ingest_parse transform_map mapping_file; do
  log="$(mktemp)"
  # -s none: AddressSanitizer's runtime is not shipped with the stable toolchain; Rust code is
  # memory-safe, and what is hunted here is panics, overflows (debug assertions are on) and hangs.
  if (cd fuzz && cargo fuzz run -s none --debug-assertions "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048) >"$log" 2>&1; then
    finding="none"
  else
    finding="CRASH: see fuzz/artifacts/$target and $log"
    status=1
  fi
  runs="$(grep -Eo 'Done [0-9]+ runs' "$log" | grep -Eo '[0-9]+' | tail -1 || true)"
  [ -n "$runs" ] || runs="$(grep -Eo '^#[0-9]+' "$log" | tail -1 | tr -d '#' || true)"
  printf '%-16s %12s %8s %s\n' "$target" "${runs:-?}" "$seconds" "$finding"
  [ "$finding" = none ] && rm -f "$log"
done
exit "$status"
