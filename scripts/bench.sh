#!/usr/bin/env bash
# Benchmarks (not tests): import through the API on SQLite and PostgreSQL, then sync from each
# storage kind's local server with N objects of each mode, a re-sync and an export, each against
# its floor (the same objects listed and fetched, or written, directly through the same client).
# Usage: scripts/bench.sh [N] [KIND ...]   (default: 10000, all kinds)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/postgres.sh"
source "$(dirname "$0")/emulators.sh"
cd "$LP_ROOT"
ensure_rust
ensure_postgres
ensure_redis
# LP_BENCH_BINARY runs an already built binary instead of building this tree.
binary=${LP_BENCH_BINARY:-}
if [ -z "$binary" ]; then
    cargo build --release --quiet
    binary=$CARGO_TARGET_DIR/release/labelport
fi
objects=${1:-10000}
shift || true
kinds=${*:-s3 gcs azure redis localfiles}

log "import benchmark (100,000 tasks through the API)"
"$binary" bench import --tasks 100000 --postgres "$LP_POSTGRES_URL"

# Separate ports from the tests', so a benchmark never disturbs a test run.
LP_S3_PORT=19200 LP_GCS_PORT=19210 LP_AZURE_PORT=19220
trap stop_emulators EXIT
for kind in $kinds; do
    case $kind in
        s3) start_s3 ;;
        gcs) start_gcs ;;
        azure) start_azurite ;;
    esac
    scratch=$(mktemp -d)
    log "sync benchmark: $kind, $objects objects of each mode"
    LABELPORT_LOG=warn LOCAL_FILES_SERVING_ENABLED=true LOCAL_FILES_DOCUMENT_ROOT=$scratch \
        "$binary" bench sync --kind "$kind" --objects "$objects" --annotations 10000
    rm -rf "$scratch"
    stop_emulators
done
