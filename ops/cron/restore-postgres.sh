#!/usr/bin/env bash
# Restore a backup-postgres.sh dump into a NEW database, after checking its SHA-256 sidecar.
# The restore runs in one transaction; if it fails, the half-made database is dropped, so a
# database that exists afterwards is a complete restore.
#
#   usage: restore-postgres.sh DUMP_FILE TARGET_DATABASE
#   RESTORE_PGHOST / RESTORE_PGPORT / RESTORE_PGUSER   target server   (127.0.0.1 / 5432 / postgres)
#   RESTORE_NO_OWNER=1   do not restore ownership and grants (target lacks the original roles)
#   PG_BIN               PostgreSQL client binaries    (/usr/lib/postgresql/15/bin)
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[ $# -eq 2 ] || die "usage: $0 DUMP_FILE TARGET_DATABASE"
dump=$1
target=$2
RESTORE_PGHOST=${RESTORE_PGHOST:-127.0.0.1}
RESTORE_PGPORT=${RESTORE_PGPORT:-5432}
RESTORE_PGUSER=${RESTORE_PGUSER:-postgres}
RESTORE_NO_OWNER=${RESTORE_NO_OWNER:-0}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
export PGCONNECT_TIMEOUT=${PGCONNECT_TIMEOUT:-10}
conn=(-w -h "$RESTORE_PGHOST" -p "$RESTORE_PGPORT" -U "$RESTORE_PGUSER")
where="$RESTORE_PGHOST:$RESTORE_PGPORT"

verify_checksum "$dump"

exists=$("$PG_BIN/psql" -X -q -At "${conn[@]}" -d postgres -v ON_ERROR_STOP=1 -v db="$target" \
    <<<"SELECT count(*) FROM pg_database WHERE datname = :'db'") ||
    die "cannot connect to $where as $RESTORE_PGUSER"
[ "$exists" = 0 ] || die "database '$target' already exists on $where; restore needs a fresh database"

"$PG_BIN/createdb" "${conn[@]}" --template=template0 "$target" ||
    die "cannot create database '$target' on $where"

options=(--exit-on-error --single-transaction)
[ "$RESTORE_NO_OWNER" = 1 ] && options+=(--no-owner --no-privileges)
if ! "$PG_BIN/pg_restore" "${conn[@]}" "${options[@]}" --dbname="$target" "$dump"; then
    "$PG_BIN/dropdb" "${conn[@]}" "$target" || log "could not drop the half-restored '$target'"
    die "pg_restore of $dump into '$target' on $where failed; '$target' was dropped"
fi
log "restored $dump into database '$target' on $where"
