#!/usr/bin/env bash
# Initiate the C3S MongoDB replica set (three members) and optionally create its first users.
# Run once, on the first member, after mongod runs with ops/mongo/mongod.conf on all three.
# Safe to run again: an initiated set is left as it is.
#
#   MONGO_RS_NAME     replica set name (must match replication.replSetName)       (c3s)
#   MONGO_MEMBERS     "host:port host:port host:port"; the first gets priority 2
#                     (mongo1.c3s.internal:27017 mongo2.c3s.internal:27017 mongo3.c3s.internal:27017)
#   MONGO_INIT_URI    how to reach the first member directly
#                     (mongodb://127.0.0.1:27017/?directConnection=true; add credentials once
#                     users exist)
#   MONGO_ADMIN_USER / MONGO_ADMIN_PASSWORD     optional: root user on admin
#   MONGO_APP_USER / MONGO_APP_PASSWORD / MONGO_APP_DB   optional: readWrite user for the app (c3s)
#   MONGO_BACKUP_USER / MONGO_BACKUP_PASSWORD   optional: backup+restore user for ops/cron
#   MONGO_WAIT_SECONDS  how long to wait for a PRIMARY                                 (60)
set -euo pipefail

export MONGO_RS_NAME=${MONGO_RS_NAME:-c3s}
export MONGO_MEMBERS=${MONGO_MEMBERS:-mongo1.c3s.internal:27017 mongo2.c3s.internal:27017 mongo3.c3s.internal:27017}
export MONGO_WAIT_SECONDS=${MONGO_WAIT_SECONDS:-60}
MONGO_INIT_URI=${MONGO_INIT_URI:-mongodb://127.0.0.1:27017/?directConnection=true}
MONGOSH=${MONGOSH:-mongosh}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

die() { printf 'init-replica-set: ERROR: %s\n' "$*" >&2; exit 1; }

command -v "$MONGOSH" >/dev/null || die "$MONGOSH not found (install mongodb-mongosh)"
[[ $MONGO_RS_NAME =~ ^[A-Za-z0-9_-]+$ ]] || die "bad replica set name '$MONGO_RS_NAME'"
for member in $MONGO_MEMBERS; do
    [[ $member =~ ^[A-Za-z0-9.-]+:[0-9]+$ ]] || die "member '$member' is not host:port"
done

# Passwords travel in the environment, not on the command line where ps would show them.
export MONGO_ADMIN_USER=${MONGO_ADMIN_USER:-} MONGO_ADMIN_PASSWORD=${MONGO_ADMIN_PASSWORD:-}
export MONGO_APP_USER=${MONGO_APP_USER:-} MONGO_APP_PASSWORD=${MONGO_APP_PASSWORD:-}
export MONGO_APP_DB=${MONGO_APP_DB:-c3s}
export MONGO_BACKUP_USER=${MONGO_BACKUP_USER:-} MONGO_BACKUP_PASSWORD=${MONGO_BACKUP_PASSWORD:-}

exec "$MONGOSH" "$MONGO_INIT_URI" --quiet --norc --file "$here/init-replica-set.js"
