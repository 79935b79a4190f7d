# Local cloud-storage servers for the tests (sourced by test.sh and bench.sh).
# S3: s3s-fs 0.14.1, an S3 server over a folder that checks SigV4 signatures (headers and
# pre-signed query strings); a bucket is a sub-folder of its root. Installed once with
# `cargo install` (about 4 minutes on 2 cores) into $LP_CACHE/emu; later runs reuse it.
# 0.15 and newer need rustc 1.96, so the version is pinned.

S3S_FS_VERSION=0.14.1
: "${LP_EMU:=$LP_CACHE/emu}"
: "${LP_S3_PORT:=19100}"
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
        wait "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
}

stop_emulators() {
    stop_s3
}
