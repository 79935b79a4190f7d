# The web UI's end-to-end tests (sourced): headless Chromium from Debian's packages, driven by
# playwright-core from npm (pinned in tests/e2e/package-lock.json), against a labelport server
# the test starts itself, with Label Studio's labeling front end from frontend.sh.

# Installs Debian's chromium once.
ensure_chromium() {
    command -v chromium >/dev/null 2>&1 || apt_install chromium
}

# Installs the test's npm packages once per lock file, outside the clone, and links them in.
ensure_e2e_packages() {
    local lock=$LP_ROOT/tests/e2e/package-lock.json
    local dir; dir=$LP_CACHE/e2e/$(sha256sum "$lock" | cut -c1-16)
    command -v npm >/dev/null 2>&1 || apt_install nodejs npm
    local major; major=$(node -p 'process.versions.node.split(".")[0]')
    if [ "$major" -lt 20 ]; then
        log "the end-to-end tests need Node.js 20 or newer (playwright-core, node --test); this is $(node --version)"
        return 1
    fi
    if [ ! -e "$dir/.installed" ]; then
        log "installing the end-to-end test packages (npm ci) into $dir"
        rm -rf "$dir"; mkdir -p "$dir"
        cp "$LP_ROOT/tests/e2e/package.json" "$lock" "$dir/"
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >&2) || return 1
        touch "$dir/.installed"
    fi
    ln -sfn "$dir/node_modules" "$LP_ROOT/tests/e2e/node_modules"
}

# Runs the end-to-end tests with the given labelport binary; the S3 server must be running.
run_e2e() {
    local binary=$1
    ensure_chromium
    ensure_e2e_packages || return 1
    local frontend; frontend=$(ensure_frontend) || return 1
    log "web UI end-to-end tests (headless Chromium); screenshots in ${LP_E2E_ARTIFACTS:-$LP_ROOT/test-artifacts/e2e}"
    (cd "$LP_ROOT/tests/e2e" && LABELPORT_BINARY=$binary LABELPORT_FRONTEND_DIR=$frontend \
        node --test --test-concurrency=1 ui.test.js)
}
