# Sourced by the ops/postgres scripts: defaults shared by every node and small helpers.
# Every value can be overridden from the environment.
# shellcheck shell=bash

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_SUPERUSER=${PG_SUPERUSER:-postgres}
PG_SOCKET_DIR=${PG_SOCKET_DIR:-/var/run/postgresql}
PG_LISTEN_ADDRESSES=${PG_LISTEN_ADDRESSES:-*}
PG_AUTH_METHOD=${PG_AUTH_METHOD:-scram-sha-256}
PG_WAIT_SECONDS=${PG_WAIT_SECONDS:-60}
REPL_USER=${REPL_USER:-replicator}
REPL_PASSWORD=${REPL_PASSWORD:-}
REPL_ALLOWED_CIDR=${REPL_ALLOWED_CIDR:-127.0.0.1/32}
PRIMARY_HOST=${PRIMARY_HOST:-127.0.0.1}
PRIMARY_PORT=${PRIMARY_PORT:-5432}
# Unset: the two standbys of a full install; set but empty: a lone primary (no slots, asynchronous).
STANDBY_SLOTS=${STANDBY_SLOTS-standby1 standby2}
PROMOTE_PGUSER=${PROMOTE_PGUSER:-postgres}
# Extra lines for every node's conf.d/90-node.conf (throw-away test clusters use "fsync = off").
PG_EXTRA_CONF=${PG_EXTRA_CONF:-}

OPS_POSTGRES_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SCRIPT_NAME=$(basename "$0" .sh)

say() { printf '%s: %s\n' "$SCRIPT_NAME" "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

refuse_root() {
    [ "$(id -u)" -ne 0 ] || die "run as the postgres user (runuser -u postgres -- $0): the server refuses root"
}

# psql over the node's own Unix socket as the superuser, failing on the first error.
psql_local() {
    local port=$1
    shift
    "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$PG_SOCKET_DIR" -p "$port" -U "$PG_SUPERUSER" -d postgres "$@"
}

# "ANY 1 (a, b)" for the standby names given: a commit returns once one of them has flushed it.
# Nothing given: empty (asynchronous).
any_one_of() {
    [ $# -gt 0 ] || return 0
    local list
    list=$(printf '%s, ' "$@")
    printf 'ANY 1 (%s)\n' "${list%, }"
}

valid_slot_name() {
    [[ $1 =~ ^[a-z0-9_]{1,63}$ ]] || die "'$1' is not a valid replication slot name (use a-z, 0-9, _)"
}

# Shared replication settings, included from postgresql.conf through conf.d/.
install_shared_conf() {
    local pgdata=$1
    mkdir -p "$pgdata/conf.d"
    cp "$OPS_POSTGRES_DIR/replication.conf" "$pgdata/conf.d/10-c3s-replication.conf"
    grep -Eq "^[[:space:]]*include_dir[[:space:]]*=[[:space:]]*'conf.d'" "$pgdata/postgresql.conf" ||
        printf "\n# C3S: shared and per-node settings\ninclude_dir = 'conf.d'\n" >>"$pgdata/postgresql.conf"
}

# Settings that differ per node; extra lines (e.g. synchronous_standby_names) come from $3.
write_node_conf() {
    local pgdata=$1 port=$2 name=$3 extra=${4:-}
    {
        echo "# Written by ops/postgres for this node only; rewritten when the node is rebuilt."
        echo "port = $port"
        echo "listen_addresses = '$PG_LISTEN_ADDRESSES'"
        echo "unix_socket_directories = '$PG_SOCKET_DIR'"
        echo "cluster_name = '$name'"
        [ -z "$PG_EXTRA_CONF" ] || echo "$PG_EXTRA_CONF"
        [ -z "$extra" ] || echo "$extra"
    } >"$pgdata/conf.d/90-node.conf"
}

node_logfile() { printf '%s.log\n' "${1%/}"; }

# Start the node (or reload it if it already runs).
start_node() {
    local pgdata=$1
    if "$PG_BIN/pg_ctl" -D "$pgdata" status >/dev/null 2>&1; then
        "$PG_BIN/pg_ctl" -D "$pgdata" reload >/dev/null
    else
        "$PG_BIN/pg_ctl" -D "$pgdata" -l "$(node_logfile "$pgdata")" -w -t "$PG_WAIT_SECONDS" start >/dev/null ||
            die "server in $pgdata did not start; see $(node_logfile "$pgdata")"
    fi
}

# Poll a query on the local node until it prints the expected value.
wait_for() {
    local port=$1 sql=$2 expected=$3 what=$4 got=""
    for _ in $(seq "$((PG_WAIT_SECONDS * 5))"); do
        got=$(psql_local "$port" -c "$sql" 2>/dev/null || true)
        [ "$got" = "$expected" ] && return 0
        sleep 0.2
    done
    die "timed out after ${PG_WAIT_SECONDS}s waiting for $what (last answer: '${got}')"
}
