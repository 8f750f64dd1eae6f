#!/usr/bin/env bash
# Point a running standby at a (new) primary after a failover, through its slot there, and wait
# until it streams. The standby follows the new timeline (recovery_target_timeline = 'latest').
#
#   STANDBY_NAME / STANDBY_PORT / STANDBY_SLOT   the standby to re-point
#   PRIMARY_HOST / PRIMARY_PORT                  the new primary
set -euo pipefail
# shellcheck source=common.sh source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

STANDBY_NAME=${STANDBY_NAME:-standby2}
STANDBY_PORT=${STANDBY_PORT:-5432}
STANDBY_SLOT=${STANDBY_SLOT:-$STANDBY_NAME}

refuse_root
valid_slot_name "$STANDBY_SLOT"

conninfo="host=$PRIMARY_HOST port=$PRIMARY_PORT user=$REPL_USER application_name=$STANDBY_NAME"
[ -z "$REPL_PASSWORD" ] || conninfo="$conninfo password=$REPL_PASSWORD"

in_recovery=$(psql_local "$STANDBY_PORT" -c "SELECT pg_is_in_recovery()") ||
    die "cannot connect to $STANDBY_NAME on port $STANDBY_PORT"
[ "$in_recovery" = t ] || die "$STANDBY_NAME on port $STANDBY_PORT is a primary, not a standby"

psql_local "$STANDBY_PORT" -v conninfo="$conninfo" -v slot="$STANDBY_SLOT" <<'SQL'
ALTER SYSTEM SET primary_conninfo = :'conninfo';
ALTER SYSTEM SET primary_slot_name = :'slot';
SELECT pg_reload_conf() \g /dev/null
SQL
wait_for "$STANDBY_PORT" \
    "SELECT status || ' ' || sender_port FROM pg_stat_wal_receiver" "streaming $PRIMARY_PORT" \
    "$STANDBY_NAME to stream from $PRIMARY_HOST:$PRIMARY_PORT"
say "$STANDBY_NAME streams from $PRIMARY_HOST:$PRIMARY_PORT"
