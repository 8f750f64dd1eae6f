#!/usr/bin/env bash
# Compare two databases table by table: row count and a content digest per table (md5 over the
# sorted md5s of every row's text form), and every sequence's position. Used to prove a restore
# equals its source; the source must not change meanwhile (compare with a paused standby or a
# quiet database). A restored sequence may be ahead of its source, never behind: a standby (and
# so a dump taken there) sees sequences up to 32 values ahead of the primary, which is harmless,
# while a sequence behind its table would hand out ids that already exist.
#
#   usage: verify-restore.sh SOURCE_CONNINFO RESTORED_CONNINFO
#          e.g. verify-restore.sh "host=db2 port=5432 dbname=c3s" "host=scratch dbname=c3s_check"
#   VERIFY_ALLOW_EMPTY=1   succeed when neither database has a table (normally an error: the
#                          wrong database was named)
#   PG_BIN                 PostgreSQL client binaries   (/usr/lib/postgresql/15/bin)
# Exit status: 0 identical, 1 different or not comparable.
# The digest holds 32 bytes per row in memory on the server: fine up to tens of millions of rows
# per table; beyond that compare per partition.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[ $# -eq 2 ] || die "usage: $0 SOURCE_CONNINFO RESTORED_CONNINFO"
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
VERIFY_ALLOW_EMPTY=${VERIFY_ALLOW_EMPTY:-0}
export PGCONNECT_TIMEOUT=${PGCONNECT_TIMEOUT:-10}

# One line per table and sequence: kind name<TAB>rows-or-value<TAB>digest-or-is_called.
# The session settings pin every text form that depends on them.
summary_sql=$(
    cat <<'SQL'
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
SET IntervalStyle = 'postgres';
SET extra_float_digits = 3;
SET bytea_output = 'hex';
SELECT format(
         'SELECT %L, count(*), coalesce(md5(string_agg(md5(t::text), '''' ORDER BY md5(t::text) COLLATE "C")), ''-'') FROM %s AS t',
         'table ' || c.oid::regclass::text, c.oid::regclass)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname !~ '^pg_(toast|temp)'
UNION ALL
SELECT format('SELECT %L, last_value, is_called FROM %s', 'sequence ' || c.oid::regclass::text, c.oid::regclass)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'S' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
ORDER BY 1
\gexec
SQL
)

summarise() {
    "$PG_BIN/psql" -X -q -At -F $'\t' -w -v ON_ERROR_STOP=1 -d "$1" <<<"$summary_sql" | LC_ALL=C sort
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
summarise "$1" >"$work/source" || die "cannot summarise the source database ($1)"
summarise "$2" >"$work/restored" || die "cannot summarise the restored database ($2)"

if [ ! -s "$work/source" ] && [ ! -s "$work/restored" ]; then
    [ "$VERIFY_ALLOW_EMPTY" = 1 ] || die "neither database has a table or sequence; wrong database names?"
fi

# Report every difference by name, then a one-line verdict.
if awk -F '\t' '
    FNR == NR { source[$1] = $2 "\t" $3; next }
    { restored[$1] = $2 "\t" $3 }
    END {
        bad = 0
        for (name in source) {
            if (!(name in restored)) { print "MISSING in restored: " name; bad++ }
            else if (name ~ /^sequence / && (restored[name] + 0) >= (source[name] + 0)) continue
            else if (source[name] != restored[name]) {
                split(source[name], s, "\t"); split(restored[name], r, "\t")
                print "DIFFERS: " name ": source " s[1] " / " s[2] ", restored " r[1] " / " r[2]; bad++
            }
        }
        for (name in restored) if (!(name in source)) { print "EXTRA in restored: " name; bad++ }
        exit bad > 0
    }' "$work/source" "$work/restored" >&2; then
    log "equal: $(grep -c '^table ' "$work/source" || true) tables (row counts and content digests) and $(grep -c '^sequence ' "$work/source" || true) sequences"
else
    die "the restored database differs from the source (see above)"
fi
