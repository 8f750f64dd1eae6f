#!/usr/bin/env bash
# Nightly logical backup of the C3S databases, taken on a hot standby so the primary does no
# extra work. WAL replay on the standby is paused for the length of the dump and resumed in an
# EXIT trap (also when the dump fails): the dump then cannot be cancelled by a recovery conflict,
# and with several databases every dump sees the same point in the WAL.
# Each database becomes DB-YYYYMMDDTHHMMSSZ.dump (pg_dump -Fc) and DB-....dump.sha256, written as
# .partial files first, fsynced, then renamed. Old backups go after BACKUP_KEEP_DAYS days.
#
#   BACKUP_PGHOST / BACKUP_PGPORT / BACKUP_PGUSER   the standby   (127.0.0.1 / 5432 / postgres)
#   BACKUP_DATABASES   databases to dump                           ("c3s")
#   BACKUP_DIR         where backups go                            (/var/backups/c3s/postgres)
#   BACKUP_KEEP_DAYS   retention                                   (14)
#   BACKUP_ALLOW_PRIMARY=1   dump a primary when no standby is left (nothing to pause there)
#   PG_BIN             PostgreSQL client binaries                  (/usr/lib/postgresql/15/bin)
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BACKUP_PGHOST=${BACKUP_PGHOST:-127.0.0.1}
BACKUP_PGPORT=${BACKUP_PGPORT:-5432}
BACKUP_PGUSER=${BACKUP_PGUSER:-postgres}
BACKUP_DATABASES=${BACKUP_DATABASES:-c3s}
BACKUP_DIR=${BACKUP_DIR:-/var/backups/c3s/postgres}
BACKUP_KEEP_DAYS=${BACKUP_KEEP_DAYS:-14}
BACKUP_ALLOW_PRIMARY=${BACKUP_ALLOW_PRIMARY:-0}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
export PGCONNECT_TIMEOUT=${PGCONNECT_TIMEOUT:-10}
where="$BACKUP_PGHOST:$BACKUP_PGPORT"

sql() {
    "$PG_BIN/psql" -X -q -At -w -v ON_ERROR_STOP=1 -h "$BACKUP_PGHOST" -p "$BACKUP_PGPORT" \
        -U "$BACKUP_PGUSER" -d postgres -c "$1"
}

paused=0
current=""
cleanup() {
    local status=$? attempt
    [ -z "$current" ] || rm -f -- "$current.partial" "$current.sha256.partial"
    if [ "$paused" = 1 ]; then
        for attempt in 1 2 3 4 5; do
            if sql "SELECT pg_wal_replay_resume()" >/dev/null 2>&1; then
                log "WAL replay resumed on $where"
                paused=0
                break
            fi
            log "could not resume WAL replay on $where (attempt $attempt)"
            sleep 2
        done
        if [ "$paused" = 1 ]; then
            log "ERROR: WAL replay on $where is still PAUSED; run SELECT pg_wal_replay_resume() there"
            status=1
        fi
    fi
    [ "$status" = 0 ] || log "backup FAILED (exit $status); no new backup was written"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

prepare_backup_dir "$BACKUP_DIR"
take_lock "$BACKUP_DIR/.backup-postgres.lock"

in_recovery=$(sql "SELECT pg_is_in_recovery()") ||
    die "cannot connect to the standby $where as $BACKUP_PGUSER"
if [ "$in_recovery" = t ]; then
    sql "SELECT pg_wal_replay_pause()" >/dev/null || die "cannot pause WAL replay on $where"
    paused=1
    # 'pause requested' already stops replay before its next record; 'paused' once it got there.
    state=$(sql "SELECT pg_get_wal_replay_pause_state()")
    case $state in
        paused | "pause requested") ;;
        *) die "WAL replay on $where did not pause (state: $state)" ;;
    esac
    lsn=$(sql "SELECT pg_last_wal_replay_lsn()")
    log "WAL replay paused on $where at $lsn"
elif [ "$BACKUP_ALLOW_PRIMARY" = 1 ]; then
    log "WARNING: $where is a primary, not a standby; dumping it anyway (BACKUP_ALLOW_PRIMARY=1)"
else
    die "$where is a primary, not a standby; point BACKUP_PGHOST/BACKUP_PGPORT at a standby or set BACKUP_ALLOW_PRIMARY=1"
fi

stamp=$(date -u +%Y%m%dT%H%M%SZ)
for db in $BACKUP_DATABASES; do
    final="$BACKUP_DIR/$db-$stamp.dump"
    [ ! -e "$final" ] || die "$final already exists"
    current=$final
    "$PG_BIN/pg_dump" -w -h "$BACKUP_PGHOST" -p "$BACKUP_PGPORT" -U "$BACKUP_PGUSER" \
        --format=custom --file="$final.partial" "$db" ||
        die "pg_dump of database '$db' on $where failed"
    "$PG_BIN/pg_restore" --list "$final.partial" >/dev/null ||
        die "the dump of '$db' cannot be read back by pg_restore"
    publish "$final"
    current=""
done

if [ "$paused" = 1 ]; then
    after=$(sql "SELECT pg_last_wal_replay_lsn()")
    [ "$after" = "$lsn" ] ||
        log "WARNING: replay moved from $lsn to $after during the dump (was it resumed by someone else?)"
fi

for db in $BACKUP_DATABASES; do
    prune "$BACKUP_DIR" "$db-*.dump" "$BACKUP_KEEP_DAYS"
done
log "backup of $BACKUP_DATABASES from $where complete"
