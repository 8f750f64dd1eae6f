#!/usr/bin/env bash
# Build the C3S PostgreSQL primary: initdb (when the data directory is empty), replication
# settings, a pg_hba line for the standbys, the replication role and one physical replication
# slot per standby. Safe to run again: it re-applies settings and creates only what is missing.
#
#   PRIMARY_PGDATA  data directory           (/var/lib/postgresql/15/c3s-primary)
#   PRIMARY_PORT    port                     (5432)
#   STANDBY_SLOTS   slots to create          ("standby1 standby2")
#   REPL_USER / REPL_PASSWORD / REPL_ALLOWED_CIDR, PG_AUTH_METHOD, PG_BIN, PG_SOCKET_DIR,
#   PG_LISTEN_ADDRESSES, PG_SUPERUSER: see common.sh
#   SYNC_STANDBY_NAMES  synchronous_standby_names ("ANY 1 (<STANDBY_SLOTS>)": every commit
#                       waits until one standby has flushed it; set it empty for asynchronous)
#   PRIMARY_EXTRA_CONF  extra lines for this node's conf.d/90-node.conf
set -euo pipefail
# shellcheck source=common.sh source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PRIMARY_PGDATA=${PRIMARY_PGDATA:-/var/lib/postgresql/15/c3s-primary}
PRIMARY_NAME=${PRIMARY_NAME:-primary}
PRIMARY_EXTRA_CONF=${PRIMARY_EXTRA_CONF:-}
# shellcheck disable=SC2086 # one name per word
SYNC_STANDBY_NAMES=${SYNC_STANDBY_NAMES-$(any_one_of $STANDBY_SLOTS)}

refuse_root
for slot in $STANDBY_SLOTS; do valid_slot_name "$slot"; done

if [ ! -s "$PRIMARY_PGDATA/PG_VERSION" ]; then
    say "initdb in $PRIMARY_PGDATA"
    mkdir -p "$PRIMARY_PGDATA"
    chmod 700 "$PRIMARY_PGDATA"
    "$PG_BIN/initdb" -D "$PRIMARY_PGDATA" -U "$PG_SUPERUSER" --auth-local=peer \
        --auth-host="$PG_AUTH_METHOD" --data-checksums --encoding=UTF8 --locale=C.UTF-8 >/dev/null
fi

install_shared_conf "$PRIMARY_PGDATA"
node_extra="synchronous_standby_names = '$SYNC_STANDBY_NAMES'"
[ -z "$PRIMARY_EXTRA_CONF" ] || node_extra="$node_extra"$'\n'"$PRIMARY_EXTRA_CONF"
write_node_conf "$PRIMARY_PGDATA" "$PRIMARY_PORT" "$PRIMARY_NAME" "$node_extra"

hba_line="host replication $REPL_USER $REPL_ALLOWED_CIDR $PG_AUTH_METHOD"
grep -qxF "$hba_line" "$PRIMARY_PGDATA/pg_hba.conf" || echo "$hba_line" >>"$PRIMARY_PGDATA/pg_hba.conf"

start_node "$PRIMARY_PGDATA"
wait_for "$PRIMARY_PORT" "SELECT pg_is_in_recovery()" f "the primary to accept connections"

psql_local "$PRIMARY_PORT" -v repl_user="$REPL_USER" -v repl_password="$REPL_PASSWORD" \
    -v slots="$STANDBY_SLOTS" <<'SQL'
-- No standby streams yet: this session's own writes must not wait for one.
SET synchronous_commit = local;
SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'repl_user') AS role_missing \gset
\if :role_missing
CREATE ROLE :"repl_user" WITH REPLICATION LOGIN;
\endif
SELECT :'repl_password' <> '' AS set_password \gset
\if :set_password
ALTER ROLE :"repl_user" WITH PASSWORD :'repl_password';
\endif
-- immediately_reserve = true: the slot holds WAL from now on, before its standby first connects.
SELECT count(pg_create_physical_replication_slot(slot, true))
FROM unnest(string_to_array(:'slots', ' ')) AS slot
WHERE slot <> '' AND slot NOT IN (SELECT slot_name FROM pg_replication_slots) \g /dev/null
SQL

say "primary ready on port $PRIMARY_PORT (data $PRIMARY_PGDATA, slots: $STANDBY_SLOTS)"
[ -z "$SYNC_STANDBY_NAMES" ] ||
    say "synchronous: commits wait for $SYNC_STANDBY_NAMES; build a standby before writing"
