#!/usr/bin/env bash
# Start a local PostgreSQL server for the journal tests (Debian/Ubuntu), idempotently.
#
#   export STRATVECTOR_TEST_PG_URL="$(tests/store/start_postgres.sh)"
#   .venv/bin/pytest tests/store
#
# Installs the `postgresql` Debian package if missing, creates and starts a cluster if
# none is running, creates (or re-passwords) the role `stratvector` and the database
# `stratvector` owned by it, waits until the server accepts connections, and prints the
# SQLAlchemy URL on stdout (everything else goes to stderr). Safe to run again.
#
# Environment: STRATVECTOR_PG_PASSWORD (default "stratvector"). Needs root, or sudo.
set -euo pipefail

PASSWORD="${STRATVECTOR_PG_PASSWORD:-stratvector}"
ROLE=stratvector
DB=stratvector

log() { echo "start_postgres: $*" >&2; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        log "must run as root (or with sudo available)"; exit 1
    fi
fi

if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    log "installing postgresql from Debian packages"
    $SUDO apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >&2
fi

# First cluster listed, or create one for the newest installed server version.
read -r VERSION CLUSTER PORT STATUS _ < <(pg_lsclusters --no-header 2>/dev/null | head -n 1) || true
if [ -z "${VERSION:-}" ]; then
    VERSION="$(ls /usr/lib/postgresql | sort -V | tail -n 1)"
    CLUSTER=main
    log "creating cluster $VERSION/$CLUSTER"
    $SUDO pg_createcluster "$VERSION" "$CLUSTER" >&2
    read -r VERSION CLUSTER PORT STATUS _ < <(pg_lsclusters --no-header | head -n 1)
fi

if [ "$STATUS" != "online" ]; then
    log "starting cluster $VERSION/$CLUSTER on port $PORT"
    $SUDO pg_ctlcluster "$VERSION" "$CLUSTER" start >&2
fi

for _ in $(seq 1 60); do
    if pg_isready -q -h 127.0.0.1 -p "$PORT"; then break; fi
    sleep 0.5
done
pg_isready -h 127.0.0.1 -p "$PORT" >&2 || { log "server did not become ready"; exit 1; }

as_postgres() { $SUDO su -s /bin/sh postgres -c "$1"; }
psql_admin() { as_postgres "psql -X -q -v ON_ERROR_STOP=1 -p $PORT -tA -c \"$1\""; }

PW_SQL="${PASSWORD//\'/\'\'}"
if [ "$(psql_admin "SELECT 1 FROM pg_roles WHERE rolname = '$ROLE'")" = "1" ]; then
    psql_admin "ALTER ROLE $ROLE WITH LOGIN PASSWORD '$PW_SQL'" >&2
else
    log "creating role $ROLE"
    psql_admin "CREATE ROLE $ROLE WITH LOGIN PASSWORD '$PW_SQL'" >&2
fi
if [ "$(psql_admin "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != "1" ]; then
    log "creating database $DB"
    as_postgres "createdb -p $PORT -O $ROLE $DB" >&2
fi

urlencode() {
    local s="$1" out="" c i
    for ((i = 0; i < ${#s}; i++)); do
        c="${s:i:1}"
        case "$c" in
            [a-zA-Z0-9._~-]) out+="$c" ;;
            *) out+="$(printf '%%%02X' "'$c")" ;;
        esac
    done
    printf '%s' "$out"
}
PW_URL="$(urlencode "$PASSWORD")"
echo "postgresql+psycopg://$ROLE:$PW_URL@127.0.0.1:$PORT/$DB"
