"""Planned failover with ops/postgres on its own cluster: promote.sh refuses while the old primary
runs; after a clean stop, a standby is promoted with every committed row, the other standby
follows it (follow.sh), the new primary takes writes and the old primary is rebuilt as its
standby (make-standby.sh). A crash of the primary is in test_failover_sigkill.py."""

from __future__ import annotations

from .conftest import WAIT_SECONDS, wait_until

ROWS = 2000


def test_promote_a_standby_after_the_primary_stops(cluster_factory):
    cluster = cluster_factory()
    old_primary, standby1, standby2 = cluster.nodes
    old_primary.query("CREATE TABLE observation (id integer PRIMARY KEY, pixel_no integer)",
                      dbname="postgres")
    for start in range(0, ROWS, 500):  # several committed transactions
        old_primary.query("INSERT INTO observation SELECT i, i %% 97 FROM generate_series(%s, %s) i",
                          (start + 1, start + 500), dbname="postgres")

    refused = cluster.script("postgres/promote.sh", check=False, **cluster.standby_env(standby1))
    assert refused.returncode == 1
    assert "still answers" in refused.stderr
    assert standby1.scalar("SELECT pg_is_in_recovery()", dbname="postgres") is True

    cluster.pg_ctl(old_primary, "-m", "fast", "-w", "stop")
    promoted = cluster.script("postgres/promote.sh", **cluster.standby_env(standby1))
    assert "standby1 is the primary now" in promoted.stderr
    assert standby1.scalar("SELECT pg_is_in_recovery()", dbname="postgres") is False
    assert standby1.query("SELECT count(*), sum(id) FROM observation", dbname="postgres")[0] == (
        ROWS, ROWS * (ROWS + 1) // 2)
    slots = {name for (name,) in standby1.query(
        "SELECT slot_name FROM pg_replication_slots", dbname="postgres")}
    assert slots == {"standby2"}
    assert standby1.scalar("SHOW synchronous_standby_names", dbname="postgres") == "ANY 1 (standby2)"

    # The other standby follows the new primary onto its timeline; writes wait for it.
    cluster.script("postgres/follow.sh", STANDBY_NAME="standby2", STANDBY_PORT=str(standby2.port),
                   PRIMARY_PORT=str(standby1.port))
    standby1.query("INSERT INTO observation VALUES (%s, 1)", (ROWS + 1,), dbname="postgres")
    wait_until(lambda: standby2.scalar("SELECT count(*) FROM observation", dbname="postgres")
               == ROWS + 1, WAIT_SECONDS, "standby2 to replay the new primary's write")

    # The old primary comes back as a standby of the new one, through a slot made for it.
    standby1.query("SELECT pg_create_physical_replication_slot('old_primary', true)",
                   dbname="postgres")
    cluster.script("postgres/make-standby.sh", STANDBY_NAME="old_primary",
                   STANDBY_PGDATA=str(old_primary.pgdata), STANDBY_PORT=str(old_primary.port),
                   STANDBY_REBUILD="1", PRIMARY_PORT=str(standby1.port))
    standby1.query("INSERT INTO observation VALUES (%s, 2)", (ROWS + 2,), dbname="postgres")
    wait_until(lambda: old_primary.scalar("SELECT count(*) FROM observation", dbname="postgres")
               == ROWS + 2, WAIT_SECONDS, "the rebuilt old primary to replay new writes")
    assert old_primary.scalar("SELECT pg_is_in_recovery()", dbname="postgres") is True

    lag = cluster.script("postgres/lag.sh", PRIMARY_PORT=str(standby1.port),
                         LAG_EXPECT_STANDBYS="2")
    assert {line.split("\t")[0] for line in lag.stdout.splitlines()[1:]} == {
        "standby2", "old_primary"}
