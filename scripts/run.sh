#!/usr/bin/env bash
# Builds and starts labelport with the embedded SQLite database on http://localhost:8080.
# On the first run it creates an admin user and prints its API token (keep it: tokens are stored
# hashed and cannot be shown again; `labelport user token --email ...` makes a new one).
# Settings come from the environment (see the README's configuration table).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/frontend.sh"
ensure_rust
cd "$LP_ROOT"
cargo build --release --quiet
# The labeling screen uses Label Studio's own front end, fetched once from PyPI (pinned, checksummed).
if [ -z "${LABELPORT_FRONTEND_DIR:-}" ]; then
    LABELPORT_FRONTEND_DIR=$(ensure_frontend)
fi
export LABELPORT_FRONTEND_DIR
binary="$CARGO_TARGET_DIR/release/labelport"
: "${LABELPORT_DATA_DIR:=$LP_ROOT/labelport-data}"
export LABELPORT_DATA_DIR
if [ ! -e "$LABELPORT_DATA_DIR/labelport.db" ] && [ -z "${LABELPORT_DATABASE_URL:-}" ] \
    && [ -z "${LABELPORT_USERNAME:-}${LABEL_STUDIO_USERNAME:-}" ]; then
    password=$(python3 -c 'import secrets; print(secrets.token_urlsafe(12))')
    log "first start: creating user admin@localhost"
    LABELPORT_NEW_USER_PASSWORD="$password" "$binary" user create --email admin@localhost >"$LP_CACHE/first-user.txt"
    token=$(tail -n 1 "$LP_CACHE/first-user.txt"); rm -f "$LP_CACHE/first-user.txt"
    printf '\n  user:     admin@localhost\n  password: %s\n  token:    %s\n\n' "$password" "$token"
fi
exec "$binary" start "$@"
