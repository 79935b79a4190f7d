# Finds or starts a PostgreSQL server the tests can use without a password (sourced by test.sh).
# Sets LP_POSTGRES_URL. Uses 127.0.0.1:5432 when it accepts the `postgres` role with trust auth;
# otherwise installs PostgreSQL from Debian's packages if needed and starts a private cluster
# with trust auth on a spare port, under $LP_CACHE/postgres.

postgres_accepts() { # url
    psql "$1" -Atqc 'select 1' >/dev/null 2>&1
}

ensure_postgres() {
    local system_url="postgres://postgres@127.0.0.1:5432/postgres"
    command -v psql >/dev/null 2>&1 || apt_install postgresql-client
    if postgres_accepts "$system_url"; then
        LP_POSTGRES_URL=$system_url
        return 0
    fi
    apt_install postgresql
    local bin; bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    local dir=$LP_CACHE/postgres port=${LP_POSTGRES_PORT:-55432}
    local url="postgres://postgres@127.0.0.1:$port/postgres"
    if postgres_accepts "$url"; then
        LP_POSTGRES_URL=$url
        return 0
    fi
    local runner=()
    if [ "$(id -u)" = 0 ]; then runner=(runuser -u postgres --); fi
    if [ ! -s "$dir/data/PG_VERSION" ]; then
        log "creating a private PostgreSQL cluster in $dir"
        mkdir -p "$dir"
        [ "$(id -u)" = 0 ] && chown postgres "$dir"
        "${runner[@]}" "$bin/initdb" -D "$dir/data" -A trust -U postgres >/dev/null
    fi
    log "starting PostgreSQL on 127.0.0.1:$port"
    "${runner[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
        -o "-p $port -k /tmp -c listen_addresses=127.0.0.1" start >/dev/null
    postgres_accepts "$url" || { log "PostgreSQL did not start; see $dir/log"; return 1; }
    LP_POSTGRES_URL=$url
}
