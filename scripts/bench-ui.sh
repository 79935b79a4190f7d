#!/usr/bin/env bash
# Benchmark (not a test) of the web UI in headless Chromium: a project of N tasks (default
# 100,000), the data manager's first and last pages, the labeling screen with a cold and a warm
# cache, and choose -> submit -> next task. Prints medians, bytes and the server's peak memory.
# Usage: scripts/bench-ui.sh [N]      LP_BENCH_BINARY runs an already built binary.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/frontend.sh"
source "$(dirname "$0")/e2e.sh"
cd "$LP_ROOT"
ensure_rust
binary=${LP_BENCH_BINARY:-}
if [ -z "$binary" ]; then
    cargo build --release --quiet
    binary=$CARGO_TARGET_DIR/release/labelport
fi
ensure_chromium
ensure_e2e_packages
frontend=$(ensure_frontend)
cd tests/e2e
LABELPORT_BINARY=$binary LABELPORT_FRONTEND_DIR=$frontend BENCH_TASKS=${1:-100000} node bench.js
