#!/usr/bin/env bash
# Restore a backup-mongo.sh archive after checking its SHA-256 sidecar, replaying the oplog the
# dump captured (one point in time), with majority write concern. Stops at the first error, so a
# restore into a database that already holds the same documents fails instead of merging; set
# RESTORE_DROP=1 to drop each collection before restoring it.
#
#   usage: restore-mongo.sh ARCHIVE
#   RESTORE_MONGO_URI     target replica set (or standalone scratch server)
#                         (mongodb://127.0.0.1:27017/?directConnection=true)
#   RESTORE_MONGO_CONFIG  optional mongorestore --config YAML file holding "password: ..."
#   RESTORE_DROP=1        drop collections before restoring them
#   MONGORESTORE          mongorestore binary                        (mongorestore)
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[ $# -eq 1 ] || die "usage: $0 ARCHIVE"
archive=$1
RESTORE_MONGO_URI=${RESTORE_MONGO_URI:-mongodb://127.0.0.1:27017/?directConnection=true}
RESTORE_MONGO_CONFIG=${RESTORE_MONGO_CONFIG:-}
RESTORE_DROP=${RESTORE_DROP:-0}
MONGORESTORE=${MONGORESTORE:-mongorestore}

command -v "$MONGORESTORE" >/dev/null || die "$MONGORESTORE not found (install mongodb-database-tools)"
verify_checksum "$archive"

options=(--uri="$RESTORE_MONGO_URI" --archive="$archive" --gzip --oplogReplay --stopOnError
    --writeConcern='{w: "majority"}')
[ -z "$RESTORE_MONGO_CONFIG" ] || options+=(--config="$RESTORE_MONGO_CONFIG")
[ "$RESTORE_DROP" = 1 ] && options+=(--drop)

"$MONGORESTORE" "${options[@]}" || die "mongorestore of $archive failed"
log "restored $archive into $RESTORE_MONGO_URI"
