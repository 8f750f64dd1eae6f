#!/usr/bin/env bash
# Nightly backup of the C3S MongoDB replica set (GridFS frames, photos, videos), read from a
# secondary: mongodump --oplog --readPreference=secondary --archive --gzip. --oplog also captures
# the writes made while the dump runs, so mongorestore --oplogReplay restores one point in time.
# The archive is written as NAME.partial, fsynced, renamed, and gets a NAME.sha256 sidecar; old
# archives go after BACKUP_KEEP_DAYS days, and only after a successful run.
#
#   BACKUP_MONGO_URI     replica-set URI, without readPreference (set here) and, better,
#                        without a password (use BACKUP_MONGO_CONFIG)
#                        (mongodb://mongo1.c3s.internal:27017,mongo2.c3s.internal:27017,mongo3.c3s.internal:27017/?replicaSet=c3s)
#   BACKUP_MONGO_CONFIG  optional mongodump --config YAML file holding "password: ..." (mode 0600)
#   BACKUP_DIR           where archives go                          (/var/backups/c3s/mongo)
#   BACKUP_KEEP_DAYS     retention                                  (14)
#   BACKUP_PREFIX        archive name prefix                        (c3s-mongo)
#   MONGODUMP            mongodump binary                           (mongodump)
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BACKUP_MONGO_URI=${BACKUP_MONGO_URI:-mongodb://mongo1.c3s.internal:27017,mongo2.c3s.internal:27017,mongo3.c3s.internal:27017/?replicaSet=c3s}
BACKUP_MONGO_CONFIG=${BACKUP_MONGO_CONFIG:-}
BACKUP_DIR=${BACKUP_DIR:-/var/backups/c3s/mongo}
BACKUP_KEEP_DAYS=${BACKUP_KEEP_DAYS:-14}
BACKUP_PREFIX=${BACKUP_PREFIX:-c3s-mongo}
MONGODUMP=${MONGODUMP:-mongodump}

current=""
cleanup() {
    local status=$?
    [ -z "$current" ] || rm -f -- "$current.partial" "$current.sha256.partial"
    [ "$status" = 0 ] || log "backup FAILED (exit $status); no new backup was written"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

command -v "$MONGODUMP" >/dev/null || die "$MONGODUMP not found (install mongodb-database-tools)"
case $BACKUP_MONGO_URI in
    *[?\&]readPreference=*) die "BACKUP_MONGO_URI must not set readPreference (this script reads from a secondary)" ;;
esac
prepare_backup_dir "$BACKUP_DIR"
take_lock "$BACKUP_DIR/.backup-mongo.lock"

options=(--uri="$BACKUP_MONGO_URI" --readPreference=secondary --oplog --gzip --quiet)
[ -z "$BACKUP_MONGO_CONFIG" ] || options+=(--config="$BACKUP_MONGO_CONFIG")

final="$BACKUP_DIR/$BACKUP_PREFIX-$(date -u +%Y%m%dT%H%M%SZ).archive.gz"
[ ! -e "$final" ] || die "$final already exists"
current=$final
"$MONGODUMP" "${options[@]}" --archive="$final.partial" || die "mongodump failed"
[ -s "$final.partial" ] || die "mongodump wrote an empty archive"
publish "$final"
current=""

prune "$BACKUP_DIR" "$BACKUP_PREFIX-*.archive.gz" "$BACKUP_KEEP_DAYS"
log "backup of the replica set complete"
