#!/usr/bin/env bash
# Promote a standby to primary, after the old primary is gone. Refuses while the old primary
# still answers (two primaries accepting writes would split the data), unless PROMOTE_FORCE=1.
# Afterwards it creates replication slots for the standbys that will follow the new primary
# (follow.sh) or be rebuilt from it (make-standby.sh), and makes the new primary synchronous
# with them, as the old one was.
#
# With ANY 1 synchronous replication an acknowledged commit is on at least one standby, not
# necessarily this one: given the other standbys (PROMOTE_PEERS), it refuses when one of them has
# received more WAL than this one (promote that one instead), or cannot be asked.
#
#   STANDBY_PGDATA / STANDBY_PORT / STANDBY_NAME   the standby to promote
#   OLD_PRIMARY_HOST / OLD_PRIMARY_PORT            checked first (default PRIMARY_HOST/PORT)
#   PROMOTE_PEERS    "host:port host:port" the other standbys, compared first (empty: no check)
#   PROMOTE_PGUSER   role to ask them as (postgres; a password in ~/.pgpass)
#   PROMOTE_SLOTS    slots to create on the new primary ($STANDBY_SLOTS without $STANDBY_NAME)
#   PROMOTE_SYNC_STANDBY_NAMES  synchronous_standby_names of the new primary
#                    ("ANY 1 (<PROMOTE_SLOTS>)"; empty: asynchronous)
#   PROMOTE_FORCE=1  promote even though the old primary answers or a peer is ahead
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
PROMOTE_PEERS=${PROMOTE_PEERS:-}
# shellcheck disable=SC2086 # one name per word
PROMOTE_SYNC_STANDBY_NAMES=${PROMOTE_SYNC_STANDBY_NAMES-$(any_one_of $PROMOTE_SLOTS)}

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

received_sql="SELECT coalesce(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())"
own_lsn=$(psql_local "$STANDBY_PORT" -c "$received_sql")
for peer in $PROMOTE_PEERS; do
    peer_lsn=$(PGCONNECT_TIMEOUT=5 "$PG_BIN/psql" -X -q -At -w -h "${peer%:*}" -p "${peer##*:}" \
        -U "$PROMOTE_PGUSER" -d postgres -c "$received_sql" 2>/dev/null) || peer_lsn=unreachable
    if [ "$peer_lsn" = unreachable ]; then
        problem="standby $peer cannot be asked how much WAL it has received"
    else
        ahead=$(psql_local "$STANDBY_PORT" -v peer="$peer_lsn" -v own="$own_lsn" \
            <<<"SELECT pg_wal_lsn_diff(:'peer', :'own') > 0")
        [ "$ahead" = t ] || continue
        problem="standby $peer has received more WAL ($peer_lsn) than $STANDBY_NAME ($own_lsn): promote it instead"
    fi
    [ "$PROMOTE_FORCE" = 1 ] || die "$problem, or set PROMOTE_FORCE=1 and lose what only it has"
    say "WARNING: $problem; promoting anyway (PROMOTE_FORCE=1)"
done

# Set while still a standby (where it has no effect), so the first write as primary already waits.
psql_local "$STANDBY_PORT" -v names="$PROMOTE_SYNC_STANDBY_NAMES" <<'SQL'
ALTER SYSTEM SET synchronous_standby_names = :'names';
SELECT pg_reload_conf() \g /dev/null
SQL

say "promoting $STANDBY_NAME (port $STANDBY_PORT)"
"$PG_BIN/pg_ctl" -D "$STANDBY_PGDATA" -w -t "$PG_WAIT_SECONDS" promote >/dev/null
wait_for "$STANDBY_PORT" "SELECT pg_is_in_recovery()" f "$STANDBY_NAME to leave recovery"

psql_local "$STANDBY_PORT" -v slots="$PROMOTE_SLOTS" <<'SQL'
SELECT count(pg_create_physical_replication_slot(slot, true))
FROM unnest(string_to_array(trim(:'slots'), ' ')) AS slot
WHERE slot <> '' AND slot NOT IN (SELECT slot_name FROM pg_replication_slots) \g /dev/null
SQL
timeline=$(psql_local "$STANDBY_PORT" -c "SELECT timeline_id FROM pg_control_checkpoint()")
say "$STANDBY_NAME is the primary now (port $STANDBY_PORT, timeline $timeline, slots: ${PROMOTE_SLOTS:-none}, synchronous: ${PROMOTE_SYNC_STANDBY_NAMES:-no})"
say "next: follow.sh on the other standbys (writes wait for one of them), point the application at it, rebuild the old primary with make-standby.sh"
