#!/usr/bin/env bash
# Benchmarks (not tests): import through the API on SQLite and PostgreSQL, then sync from a local
# S3 server (s3s-fs) at N=10,000 and N=100,000 objects of each mode, re-sync and export, each with
# its floor. Usage: scripts/bench.sh [N ...]   (default: 10000 100000)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/postgres.sh"
source "$(dirname "$0")/emulators.sh"
cd "$LP_ROOT"
ensure_rust
ensure_postgres
cargo build --release --quiet
binary=$CARGO_TARGET_DIR/release/labelport

log "import benchmark (100,000 tasks through the API)"
"$binary" bench import --tasks 100000 --postgres "$LP_POSTGRES_URL"

LP_S3_PORT=${LP_BENCH_S3_PORT:-19200}
trap stop_emulators EXIT
start_s3
for n in "${@:-10000 100000}"; do
    for count in $n; do
        log "sync benchmark, $count objects of each mode"
        LABELPORT_LOG=warn "$binary" bench sync --objects "$count" --annotations 10000 \
            --endpoint "$LABELPORT_TEST_S3_ENDPOINT" --access-key "$LABELPORT_TEST_S3_ACCESS_KEY" \
            --secret-key "$LABELPORT_TEST_S3_SECRET_KEY" --root "$LABELPORT_TEST_S3_ROOT"
    done
done
