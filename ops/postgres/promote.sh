#!/usr/bin/env bash
# Promote a standby to primary, after the old primary is gone. Refuses while the old primary
# still answers (two primaries accepting writes would split the data), unless PROMOTE_FORCE=1.
# Afterwards it creates replication slots for the standbys that will follow the new primary
# (follow.sh) or be rebuilt from it (make-standby.sh).
#
#   STANDBY_PGDATA / STANDBY_PORT / STANDBY_NAME   the standby to promote
#   OLD_PRIMARY_HOST / OLD_PRIMARY_PORT            checked first (default PRIMARY_HOST/PORT)
#   PROMOTE_SLOTS    slots to create on the new primary ($STANDBY_SLOTS without $STANDBY_NAME)
#   PROMOTE_FORCE=1  promote even though the old primary answers
set -euo pipefail
# shellcheck source=common.sh source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

STANDBY_NAME=${STANDBY_NAME:-standby1}
STANDBY_PGDATA=${STANDBY_PGDATA:-/var/lib/postgresql/15/c3s-$STANDBY_NAME}
STANDBY_PORT=${STANDBY_PORT:-5432}
OLD_PRIMARY_HOST=${OLD_PRIMARY_HOST:-$PRIMARY_HOST}
OLD_PRIMARY_PORT=${OLD_PRIMARY_PORT:-$PRIMARY_PORT}
PROMOTE_FORCE=${PROMOTE_FORCE:-0}
default_slots=$(tr ' ' '\n' <<<"$STANDBY_SLOTS" | grep -vxF "$STANDBY_NAME" | tr '\n' ' ' || true)
PROMOTE_SLOTS=${PROMOTE_SLOTS:-$default_slots}

refuse_root
for slot in $PROMOTE_SLOTS; do valid_slot_name "$slot"; done

if "$PG_BIN/pg_isready" -q -h "$OLD_PRIMARY_HOST" -p "$OLD_PRIMARY_PORT" -t 3; then
    [ "$PROMOTE_FORCE" = 1 ] ||
        die "the old primary $OLD_PRIMARY_HOST:$OLD_PRIMARY_PORT still answers; stop it (or fence it) first, or set PROMOTE_FORCE=1"
    say "WARNING: old primary $OLD_PRIMARY_HOST:$OLD_PRIMARY_PORT still answers; promoting anyway (PROMOTE_FORCE=1)"
fi

in_recovery=$(psql_local "$STANDBY_PORT" -c "SELECT pg_is_in_recovery()") ||
    die "cannot connect to $STANDBY_NAME on port $STANDBY_PORT"
[ "$in_recovery" = t ] || die "$STANDBY_NAME on port $STANDBY_PORT is already a primary"

say "promoting $STANDBY_NAME (port $STANDBY_PORT)"
"$PG_BIN/pg_ctl" -D "$STANDBY_PGDATA" -w -t "$PG_WAIT_SECONDS" promote >/dev/null
wait_for "$STANDBY_PORT" "SELECT pg_is_in_recovery()" f "$STANDBY_NAME to leave recovery"

psql_local "$STANDBY_PORT" -v slots="$PROMOTE_SLOTS" <<'SQL'
SELECT count(pg_create_physical_replication_slot(slot, true))
FROM unnest(string_to_array(trim(:'slots'), ' ')) AS slot
WHERE slot <> '' AND slot NOT IN (SELECT slot_name FROM pg_replication_slots) \g /dev/null
SQL
timeline=$(psql_local "$STANDBY_PORT" -c "SELECT timeline_id FROM pg_control_checkpoint()")
say "$STANDBY_NAME is the primary now (port $STANDBY_PORT, timeline $timeline, slots: ${PROMOTE_SLOTS:-none})"
say "next: point the application at it, follow.sh on the other standbys, rebuild the old primary with make-standby.sh"
