# Switchyard: `make run` brings the hub up on this machine, `make test` runs every test against
# real NATS JetStream and PostgreSQL. Both start (and if needed install) those two first.

SHELL := /bin/bash
# A build cache outside the clone, shared by every checkout on this machine.
export CARGO_TARGET_DIR ?= /var/tmp/switchyard-target
CONFIG ?= config/switchyard.example.yaml
BIN := $(CARGO_TARGET_DIR)/debug

# Demo secrets: generated once per checkout, kept out of the repository (.gitignore).
DEMO_ENV := .demo.env

.PHONY: all deps test-deps build run demo test bench chaos fuzz lint fmt check-config chart-check clean

all: build

deps:
	@bash scripts/deps.sh

# The tests also drive the dashboard in headless Chromium.
test-deps:
	@bash scripts/deps.sh --browser

build:
	cargo build --workspace --bins

$(DEMO_ENV):
	@umask 077; { \
	  echo "export SWITCHYARD_DEMO_SOURCE_SECRET=whsec_$$(head -c 32 /dev/urandom | base64 -w0)"; \
	  echo "export SWITCHYARD_DEMO_SINK_SECRET=whsec_$$(head -c 32 /dev/urandom | base64 -w0)"; \
	} > $@

## Start NATS and PostgreSQL if needed, build, run the demo sink and `switchyard up`.
run: deps build $(DEMO_ENV)
	@bash scripts/run.sh "$(CONFIG)"

## Send signed sample webhooks to a running `make run` and show what reached the sink.
demo: $(DEMO_ENV)
	@bash scripts/demo.sh

## Unit and integration tests against real NATS and PostgreSQL.
test: test-deps lint chart-check
	@bash scripts/test.sh

## Benchmarks (release build); figures go to docs/benchmarks.md.
bench: deps
	@bash scripts/bench.sh

## Faults injected under steady load (kill -9 each service, NATS/PostgreSQL restarts, a failing
## destination) with a ledger of what was sent, delivered and dead-lettered.
chaos: deps
	@bash scripts/chaos.sh

## Fuzz every signature verifier, payload parser and mapping input (FUZZ_SECONDS per target).
fuzz:
	@bash scripts/fuzz.sh

## Helm chart: lint, render (default and full values), validate against Kubernetes schemas, offline.
chart-check:
	@bash scripts/helm-check.sh

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

fmt:
	cargo fmt --all

check-config: build $(DEMO_ENV)
	@source $(DEMO_ENV) && $(BIN)/switchyard check-config --config "$(CONFIG)"

clean:
	cargo clean
