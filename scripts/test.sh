#!/usr/bin/env bash
# `make test`: every test against the real NATS and PostgreSQL that scripts/deps.sh made sure of.
set -euo pipefail
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/switchyard-target}"
export SWITCHYARD_TEST_NATS_URL="${SWITCHYARD_TEST_NATS_URL:-nats://127.0.0.1:4222}"
export SWITCHYARD_TEST_DATABASE_URL="${SWITCHYARD_TEST_DATABASE_URL:-host=/var/run/postgresql user=$(id -un) dbname=postgres}"
# TLS to PostgreSQL needs TCP; offer it to the tests where a TCP login works (a stock Debian
# server wants a password there, so the TLS tests then report themselves skipped).
if [ -z "${SWITCHYARD_TEST_DATABASE_TCP_URL:-}" ] && \
   psql "host=127.0.0.1 user=$(id -un) dbname=postgres sslmode=require connect_timeout=3" -Atqc 'SELECT 1' >/dev/null 2>&1; then
  export SWITCHYARD_TEST_DATABASE_TCP_URL="host=127.0.0.1 user=$(id -un) dbname=postgres"
fi
export SWITCHYARD_NATS_SERVER="${SWITCHYARD_NATS_SERVER:-$(command -v nats-server || echo /usr/sbin/nats-server)}"
# The crash test SIGKILLs the real deliver binary, so it must be built (nextest builds only tests).
cargo build -q -p switchyard-deliver
export SWITCHYARD_DELIVER_BIN="${SWITCHYARD_DELIVER_BIN:-$CARGO_TARGET_DIR/debug/switchyard-deliver}"
# The CLI tests of the dead-letter commands run the real `switchyard` binary.
cargo build -q -p switchyard-cli
export SWITCHYARD_CLI_BIN="${SWITCHYARD_CLI_BIN:-$CARGO_TARGET_DIR/debug/switchyard}"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi
# The data contracts' own test cases, and every mapping loaded against them.
cargo run -q -p switchyard-cli -- contracts check
