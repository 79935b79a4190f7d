#!/usr/bin/env bash
# Installs what the tests need (Rust build tools, PostgreSQL, Redis, the storage servers s3s-fs,
# fake-gcs-server and Azurite, a Python venv with the pinned label-studio-sdk) and runs every test:
#   1. cargo test: unit tests and the HTTP integration suite, on SQLite and PostgreSQL;
#   2. the label-studio-sdk compatibility suite against a running server, on SQLite and PostgreSQL;
#   3. the web UI end to end in headless Chromium (Debian chromium + playwright-core from npm).
# Exits non-zero if anything fails.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/postgres.sh"
source "$(dirname "$0")/emulators.sh"
source "$(dirname "$0")/frontend.sh"
source "$(dirname "$0")/e2e.sh"
cd "$LP_ROOT"

ensure_rust
command -v curl >/dev/null 2>&1 || apt_install curl
ensure_postgres
export LABELPORT_TEST_POSTGRES=$LP_POSTGRES_URL
ensure_redis
log "PostgreSQL for tests: $LP_POSTGRES_URL"

# Python venv for the SDK suite, rebuilt only when the pinned requirements change.
venv=$LP_CACHE/venv
requirements=tests/sdk/requirements.txt
stamp=$venv/.requirements.sha256
wanted=$(sha256sum "$requirements" | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    log "installing the Python test requirements into $venv"
    python3 -m venv "$venv" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$venv"; }
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements"
    echo "$wanted" >"$stamp"
fi

# The local storage servers run only while the tests do.
trap stop_emulators EXIT
start_s3
start_gcs
start_azurite
start_redis_tls
# Azure storages that name no endpoint use this one (labelport's AZURE_BLOB_ENDPOINT).
export AZURE_BLOB_ENDPOINT=$LABELPORT_TEST_AZURE_ENDPOINT

log "cargo test (SQLite and PostgreSQL; S3, GCS, Azure, Redis and local files against local servers)"
cargo test --quiet 2>&1

cargo build --quiet
binary=$CARGO_TARGET_DIR/debug/labelport

# Runs the SDK suite against a fresh server on the given database URL ("" = SQLite).
run_sdk_suite() {
    local name=$1 database_url=$2
    local data; data=$(mktemp -d)
    local port; port=$(free_port)
    local token; token=$(python3 -c 'import secrets; print(secrets.token_hex(20))')
    LABELPORT_DATA_DIR=$data LABELPORT_DATABASE_URL=$database_url LABELPORT_HOST=127.0.0.1 \
        LABELPORT_PORT=$port LABELPORT_USERNAME=sdk@example.com LABELPORT_PASSWORD=sdk-password \
        LABELPORT_USER_TOKEN=$token "$binary" start >"$data/server.log" 2>&1 &
    local pid=$!
    if ! wait_http "http://127.0.0.1:$port/api/version" 60; then
        cat "$data/server.log" >&2; kill "$pid" 2>/dev/null; return 1
    fi
    log "SDK compatibility suite on $name"
    local status=0
    LABELPORT_URL=http://127.0.0.1:$port LABELPORT_TOKEN=$token \
        "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/sdk || status=$?
    kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
    [ "$status" = 0 ] || { log "server log:"; tail -n 50 "$data/server.log" >&2; }
    rm -rf "$data"
    return "$status"
}

pg_database="lp_sdk_$(date +%s)_$$"
psql "$LP_POSTGRES_URL" -qc "CREATE DATABASE $pg_database" >/dev/null
trap 'stop_emulators; psql "$LP_POSTGRES_URL" -qc "DROP DATABASE IF EXISTS $pg_database" >/dev/null 2>&1 || true' EXIT

run_sdk_suite SQLite ""
run_sdk_suite PostgreSQL "${LP_POSTGRES_URL%/*}/$pg_database"
run_e2e "$binary"
log "all tests passed"
