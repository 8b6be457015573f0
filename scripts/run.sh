#!/usr/bin/env bash
# `make run`: the demo sink in the background, then `switchyard up` in the foreground.
set -euo pipefail
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/switchyard-target}"
config="${1:-config/switchyard.example.yaml}"
bin="$CARGO_TARGET_DIR/debug"
# shellcheck disable=SC1091
source .demo.env
mkdir -p .run
"$bin/switchyard" sink --listen 127.0.0.1:9900 > .run/sink.log 2>&1 &
sink=$!
trap 'kill $sink 2>/dev/null || true' EXIT
cat <<MSG
Switchyard is starting with $config
  webhooks: http://127.0.0.1:8080/v1/webhooks/demo   (Standard Webhooks, secret in .demo.env)
  sink:     http://127.0.0.1:9900/                    (deliveries are written to .run/sink.log)
  ops:      http://127.0.0.1:9101-9105/{healthz,readyz,metrics}
In another terminal: make demo     (Ctrl-C here stops everything)
MSG
"$bin/switchyard" up --config "$config"
