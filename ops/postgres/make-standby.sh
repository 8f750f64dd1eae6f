#!/usr/bin/env bash
# Build a C3S hot standby: pg_basebackup -R from the primary through this standby's own
# replication slot, per-node settings, start, and wait until WAL streams.
#
#   STANDBY_NAME     name; also application_name and slot name      (standby1)
#   STANDBY_PGDATA   data directory (/var/lib/postgresql/15/c3s-$STANDBY_NAME)
#   STANDBY_PORT     port                                           (5432)
#   STANDBY_SLOT     replication slot on the primary                ($STANDBY_NAME)
#   STANDBY_CREATE_SLOT=1  let pg_basebackup create the slot (when make-primary.sh did not)
#   STANDBY_REBUILD=1      stop and wipe an existing data directory first (e.g. an old primary)
#   PRIMARY_HOST / PRIMARY_PORT, REPL_USER / REPL_PASSWORD (or ~/.pgpass): see common.sh
set -euo pipefail
# shellcheck source=common.sh source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

STANDBY_NAME=${STANDBY_NAME:-standby1}
STANDBY_PGDATA=${STANDBY_PGDATA:-/var/lib/postgresql/15/c3s-$STANDBY_NAME}
STANDBY_PORT=${STANDBY_PORT:-5432}
STANDBY_SLOT=${STANDBY_SLOT:-$STANDBY_NAME}
STANDBY_CREATE_SLOT=${STANDBY_CREATE_SLOT:-0}
STANDBY_REBUILD=${STANDBY_REBUILD:-0}

refuse_root
valid_slot_name "$STANDBY_SLOT"

if [ -d "$STANDBY_PGDATA" ] && [ -n "$(ls -A "$STANDBY_PGDATA")" ]; then
    [ "$STANDBY_REBUILD" = 1 ] ||
        die "$STANDBY_PGDATA is not empty; set STANDBY_REBUILD=1 to stop that server and replace it"
    say "rebuilding: stopping and wiping $STANDBY_PGDATA"
    if "$PG_BIN/pg_ctl" -D "$STANDBY_PGDATA" status >/dev/null 2>&1; then
        "$PG_BIN/pg_ctl" -D "$STANDBY_PGDATA" -m fast -w stop >/dev/null
    fi
    find "$STANDBY_PGDATA" -mindepth 1 -delete
fi
mkdir -p "$STANDBY_PGDATA"
chmod 700 "$STANDBY_PGDATA"

slot_args=(--slot="$STANDBY_SLOT")
[ "$STANDBY_CREATE_SLOT" = 1 ] && slot_args+=(--create-slot)

say "base backup from $PRIMARY_HOST:$PRIMARY_PORT through slot $STANDBY_SLOT into $STANDBY_PGDATA"
if ! PGPASSWORD=$REPL_PASSWORD "$PG_BIN/pg_basebackup" --pgdata="$STANDBY_PGDATA" \
    --dbname="host=$PRIMARY_HOST port=$PRIMARY_PORT user=$REPL_USER application_name=$STANDBY_NAME" \
    --write-recovery-conf --wal-method=stream --checkpoint=fast --no-password "${slot_args[@]}"; then
    find "$STANDBY_PGDATA" -mindepth 1 -delete
    die "pg_basebackup from $PRIMARY_HOST:$PRIMARY_PORT failed (is slot '$STANDBY_SLOT' created on the primary?)"
fi

# The copy carries the primary's node settings; replace them with this node's.
write_node_conf "$STANDBY_PGDATA" "$STANDBY_PORT" "$STANDBY_NAME"
start_node "$STANDBY_PGDATA"
wait_for "$STANDBY_PORT" "SELECT status FROM pg_stat_wal_receiver" streaming "$STANDBY_NAME to stream WAL"
say "$STANDBY_NAME streaming from $PRIMARY_HOST:$PRIMARY_PORT on port $STANDBY_PORT"
