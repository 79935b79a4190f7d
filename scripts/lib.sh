# Shared helpers for the project's scripts (sourced, not run).
# Everything the scripts install is skipped when already present, so a second run is quick.

LP_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
: "${LP_CACHE:=/var/cache/labelport}"
mkdir -p "$LP_CACHE" 2>/dev/null || LP_CACHE="$LP_ROOT/.cache"
mkdir -p "$LP_CACHE"
# Builds go to a target folder outside the clone, so a fresh clone in CI reuses earlier builds.
: "${CARGO_TARGET_DIR:=$LP_CACHE/target}"
export CARGO_TARGET_DIR

log() { printf '[labelport] %s\n' "$*" >&2; }

apt_install() {
    local missing=()
    for package in "$@"; do dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package"); done
    [ ${#missing[@]} = 0 ] && return 0
    log "apt-get install ${missing[*]}"
    if [ "$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
}

ensure_rust() {
    if ! command -v cargo >/dev/null 2>&1; then
        [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
    fi
    if ! command -v cargo >/dev/null 2>&1; then
        log "cargo is missing: install a Rust toolchain (1.94 or newer, e.g. with rustup) and run again"
        exit 1
    fi
    command -v cc >/dev/null 2>&1 || apt_install gcc libc6-dev
}

# Prints a free TCP port on 127.0.0.1.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Waits until an HTTP URL answers (any status), or fails after $2 seconds.
wait_http() {
    local url=$1 limit=${2:-60} started=$SECONDS
    until curl -s -o /dev/null "$url"; do
        if (( SECONDS - started > limit )); then log "no answer from $url after ${limit}s"; return 1; fi
        sleep 0.2
    done
}
