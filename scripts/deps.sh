#!/usr/bin/env bash
# Makes sure NATS (with JetStream) and PostgreSQL run on this machine: reuses what already
# listens, installs Debian's packages when missing, starts what is stopped, and creates the
# PostgreSQL role and database Switchyard uses. With --browser (what `make test` asks for) it also
# installs headless Chromium with chromedriver for the dashboard test; running the hub needs
# neither. Safe to run again and again.
set -euo pipefail

NATS_PORT="${NATS_PORT:-4222}"
PG_PORT="${PG_PORT:-5432}"
NATS_STORE="${NATS_STORE:-/var/lib/nats-server}"
DB_NAME="${SWITCHYARD_DB_NAME:-switchyard}"
DB_USER="${SWITCHYARD_DB_USER:-$(id -un)}"

log() { echo "deps: $*" >&2; }

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for_port() {
  local port=$1 what=$2
  for _ in $(seq 1 100); do
    listening "$port" && return 0
    sleep 0.1
  done
  log "$what did not start listening on 127.0.0.1:$port"
  return 1
}

apt_updated=0
apt_install() {
  if [ "$(id -u)" != 0 ]; then
    log "need root to install $* (or install them yourself)"; exit 1
  fi
  if [ "$apt_updated" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    apt_updated=1
  fi
  log "installing $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

ensure_nats() {
  if listening "$NATS_PORT"; then
    log "NATS already listening on 127.0.0.1:$NATS_PORT"
    return
  fi
  command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || apt_install nats-server
  local bin
  bin="$(command -v nats-server || echo /usr/sbin/nats-server)"
  mkdir -p "$NATS_STORE"
  log "starting $("$bin" --version) with JetStream on 127.0.0.1:$NATS_PORT"
  if command -v start-stop-daemon >/dev/null 2>&1; then
    start-stop-daemon --start --oknodo --background --exec "$bin" -- \
      -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$NATS_STORE" -l /var/log/nats-server.log
  else
    nohup "$bin" -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$NATS_STORE" -l /var/log/nats-server.log >/dev/null 2>&1 &
  fi
  wait_for_port "$NATS_PORT" "NATS"
}

ensure_postgres() {
  if ! listening "$PG_PORT"; then
    if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
      apt_install postgresql
    fi
    local version
    version="$(ls /etc/postgresql | sort -V | tail -1)"
    if ! pg_lsclusters -h 2>/dev/null | grep -q "^$version main"; then
      pg_createcluster "$version" main >&2
    fi
    log "starting PostgreSQL $version"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2 || true
    wait_for_port "$PG_PORT" "PostgreSQL"
  else
    log "PostgreSQL already listening on 127.0.0.1:$PG_PORT"
  fi
  command -v psql >/dev/null 2>&1 || apt_install postgresql-client
  # The local socket with peer authentication works on a stock Debian install; make sure our
  # OS user has a role there that may create the per-test databases.
  if ! psql -h /var/run/postgresql -U "$DB_USER" -d postgres -Atqc 'SELECT 1' >/dev/null 2>&1; then
    log "creating PostgreSQL role $DB_USER"
    runuser -u postgres -- psql -h /var/run/postgresql -d postgres -qc \
      "CREATE ROLE \"$DB_USER\" LOGIN CREATEDB SUPERUSER" >&2
  fi
  if [ "$(psql -h /var/run/postgresql -U "$DB_USER" -d postgres -Atqc \
        "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" != 1 ]; then
    log "creating database $DB_NAME"
    psql -h /var/run/postgresql -U "$DB_USER" -d postgres -qc "CREATE DATABASE \"$DB_NAME\"" >&2
  fi
}

# The dashboard test (integration-tests/tests/it/dashboard.rs) drives headless Chromium through
# chromedriver; both come from Debian.
ensure_chromium() {
  if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    log "Chromium and chromedriver already installed"
    return
  fi
  apt_install chromium chromium-driver
}

browser=0
for arg in "$@"; do
  case "$arg" in
    --browser) browser=1 ;;
    *) log "unknown argument $arg (known: --browser)"; exit 2 ;;
  esac
done

ensure_nats
ensure_postgres
if [ "$browser" = 1 ]; then ensure_chromium; fi
log "ready: NATS on 127.0.0.1:$NATS_PORT, PostgreSQL on 127.0.0.1:$PG_PORT (database $DB_NAME, role $DB_USER)"
