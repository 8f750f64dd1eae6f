#!/usr/bin/env bash
# Replication lag per standby, as tab-separated lines:
#   standby  source  state  replay_lag_bytes  replay_lag_seconds
# source=primary rows come from the primary's pg_stat_replication: bytes of WAL the primary has
# written that the standby has not replayed yet, and the primary's measured replay_lag.
# source=standby rows (one per LAG_STANDBYS entry) are measured on the standby itself: bytes
# received but not replayed, and seconds since the last replayed transaction was committed when
# replay is behind (pg_last_xact_replay_timestamp), else 0.
#
#   PRIMARY_HOST / PRIMARY_PORT   primary to ask                (127.0.0.1 / 5432)
#   LAG_PGUSER / LAG_DBNAME       monitoring role and database  (postgres / postgres)
#   LAG_STANDBYS          "host:port host:port"  standbys to ask directly (optional)
#   LAG_EXPECT_STANDBYS   how many standbys must be streaming (0: no check)
#   LAG_MAX_BYTES / LAG_MAX_SECONDS   bounds (empty: no check)
# An empty value is not known yet (a standby that just connected, or the primary's replay_lag
# after a quiet spell) and is not held against the bounds; the state column catches standbys that
# never report.
# Exit status: 0 within bounds, 1 the primary cannot be asked, 2 a bound or expectation broken.
set -euo pipefail
# shellcheck source=common.sh source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

LAG_PGUSER=${LAG_PGUSER:-postgres}
LAG_DBNAME=${LAG_DBNAME:-postgres}
LAG_STANDBYS=${LAG_STANDBYS:-}
LAG_EXPECT_STANDBYS=${LAG_EXPECT_STANDBYS:-0}
LAG_MAX_BYTES=${LAG_MAX_BYTES:-}
LAG_MAX_SECONDS=${LAG_MAX_SECONDS:-}
export PGCONNECT_TIMEOUT=${PGCONNECT_TIMEOUT:-5}

ask() {
    local host=$1 port=$2 sql=$3
    "$PG_BIN/psql" -X -q -At -F $'\t' -v ON_ERROR_STOP=1 -w \
        -h "$host" -p "$port" -U "$LAG_PGUSER" -d "$LAG_DBNAME" -c "$sql"
}

primary_sql="
SELECT coalesce(application_name, client_addr::text, '?'), 'primary', state,
       coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint::text, ''),
       CASE WHEN replay_lag IS NOT NULL THEN round(extract(epoch FROM replay_lag), 3)::text
            WHEN replay_lsn = pg_current_wal_lsn() THEN '0.000'
            ELSE '' END
FROM pg_stat_replication ORDER BY 1"

standby_sql="
SELECT current_setting('cluster_name'), 'standby',
       CASE WHEN NOT pg_is_in_recovery() THEN 'not-a-standby'
            WHEN pg_is_wal_replay_paused() THEN 'replay-paused'
            ELSE coalesce((SELECT status FROM pg_stat_wal_receiver), 'no-receiver') END,
       coalesce(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::bigint::text, ''),
       CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN '0.000'
            ELSE coalesce(round(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 3)::text, '')
       END"

rows=$(ask "$PRIMARY_HOST" "$PRIMARY_PORT" "$primary_sql") ||
    die "cannot query pg_stat_replication on the primary $PRIMARY_HOST:$PRIMARY_PORT"
for standby in $LAG_STANDBYS; do
    row=$(ask "${standby%:*}" "${standby##*:}" "$standby_sql" 2>/dev/null) ||
        row=$(printf '%s\tstandby\tunreachable\t\t' "$standby")
    rows=${rows:+$rows$'\n'}$row
done

printf 'standby\tsource\tstate\treplay_lag_bytes\treplay_lag_seconds\n'
[ -z "$rows" ] || printf '%s\n' "$rows"

problems=$(awk -F '\t' -v max_bytes="$LAG_MAX_BYTES" -v max_seconds="$LAG_MAX_SECONDS" \
    -v expect="$LAG_EXPECT_STANDBYS" '
    NF < 3 { next }
    $2 == "primary" && $3 == "streaming" { streaming++ }
    $3 == "unreachable" || $3 == "not-a-standby" || $3 == "no-receiver" { print $1 " (" $2 "): " $3 }
    max_bytes != "" && $4 != "" && $4 + 0 > max_bytes + 0 { print $1 " (" $2 "): replay lag " $4 " bytes > " max_bytes }
    max_seconds != "" && $5 != "" && $5 + 0 > max_seconds + 0 { print $1 " (" $2 "): replay lag " $5 " s > " max_seconds }
    END { if (streaming + 0 < expect + 0) print "expected " expect " streaming standbys, the primary sees " streaming + 0 }
' <<<"$rows")
if [ -n "$problems" ]; then
    while IFS= read -r line; do say "$line"; done <<<"$problems"
    exit 2
fi
