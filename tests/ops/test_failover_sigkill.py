"""Failover after a crash, with the synchronous replication ops/postgres ships: the primary's
whole process group is SIGKILLed while writers commit through the application's engine, the most
advanced standby is promoted with promote.sh, and every commit a writer saw acknowledged is on the
new primary. Then the other standby follows it, the old primary is rebuilt as its standby, and
the next round kills the new primary. Also: a commit whose wait for a standby is cancelled is
not reported as a success, and one no standby confirms gives up within the API's bound."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from c3s.db import make_engine

from .conftest import WAIT_SECONDS, Cluster, Node, wait_until

ROUNDS = 5
WRITERS = 6
LOAD_SECONDS = 1.5


def _url(node: Node, **params: str) -> str:
    query = "&".join(f"{key}={value}" for key, value in {"connect_timeout": "3", **params}.items())
    return f"postgresql://{node.superuser}@127.0.0.1:{node.port}/postgres?{query}"


class WriteLoad:
    """Writers that commit one row per transaction through the application's engine and record
    each commit the server acknowledged. A commit that raised is of unknown outcome, not counted."""

    def __init__(self, node: Node, round_no: int):
        self.engine = make_engine(_url(node), pool_size=WRITERS)
        self.round_no = round_no
        self.acknowledged: list[tuple[int, int, int]] = []
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._write, args=(w,), daemon=True)
                         for w in range(WRITERS)]

    def _write(self, writer: int) -> None:
        seq = 0
        while True:
            seq += 1
            try:
                with self.engine.begin() as connection:
                    connection.execute(
                        text("INSERT INTO acked (round_no, writer, seq) VALUES (:r, :w, :s)"),
                        {"r": self.round_no, "w": writer, "s": seq})
            except OperationalError as error:
                self.errors.append(error)
                return
            with self._lock:
                self.acknowledged.append((self.round_no, writer, seq))

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def join(self) -> None:
        for thread in self._threads:
            thread.join(timeout=WAIT_SECONDS)
            assert not thread.is_alive(), "a writer still waits after the primary died"
        self.engine.dispose()


def _sigkill(node: Node) -> None:
    """Kill the postmaster and every backend at once, as a crash of the machine would
    (pg_ctl starts the postmaster in its own session, so its process group is the server)."""
    pid = int((node.pgdata / "postmaster.pid").read_text().split()[0])
    os.killpg(pid, signal.SIGKILL)
    wait_until(lambda: not _alive(pid), WAIT_SECONDS, f"{node.name}'s postmaster to die")
    (node.pgdata / "postmaster.pid").unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _received(node: Node) -> int:
    return int(node.scalar("SELECT pg_wal_lsn_diff(coalesce(pg_last_wal_receive_lsn(), "
                           "pg_last_wal_replay_lsn()), '0/0')", dbname="postgres"))


def _fail_over(cluster: Cluster, old: Node, standbys: list[Node]) -> tuple[Node, Node]:
    """Promote the standby that received the most WAL, re-point the other, rebuild the old
    primary as a standby; return (new primary, other standby)."""
    new, other = sorted(standbys, key=_received, reverse=True)
    env = {**cluster.standby_env(new), "OLD_PRIMARY_PORT": str(old.port),
           "PROMOTE_PEERS": f"127.0.0.1:{other.port}", "PROMOTE_SLOTS": f"{other.name} {old.name}"}
    promoted = cluster.script("postgres/promote.sh", **env)
    assert f"synchronous: ANY 1 ({other.name}, {old.name})" in promoted.stderr
    cluster.script("postgres/follow.sh", STANDBY_NAME=other.name, STANDBY_PORT=str(other.port),
                   PRIMARY_PORT=str(new.port))
    cluster.script("postgres/make-standby.sh", STANDBY_NAME=old.name,
                   STANDBY_PGDATA=str(old.pgdata), STANDBY_PORT=str(old.port),
                   STANDBY_REBUILD="1", PRIMARY_PORT=str(new.port))
    return new, other


@pytest.mark.slow
def test_no_acknowledged_commit_lost_when_the_primary_is_killed(cluster_factory):
    cluster = cluster_factory()
    primary, *standbys = cluster.nodes
    assert primary.scalar("SHOW synchronous_standby_names", dbname="postgres") == (
        "ANY 1 (standby1, standby2)")
    primary.query("CREATE TABLE acked (round_no integer, writer integer, seq integer, "
                  "PRIMARY KEY (round_no, writer, seq))", dbname="postgres")
    acknowledged: list[tuple[int, int, int]] = []
    for round_no in range(1, ROUNDS + 1):
        load = WriteLoad(primary, round_no)
        load.start()
        time.sleep(LOAD_SECONDS)
        _sigkill(primary)
        load.join()
        assert len(load.errors) == WRITERS, "every writer ends on the dead primary"
        assert len(load.acknowledged) > 50, "the load committed too little to prove anything"
        acknowledged += load.acknowledged

        primary, other = _fail_over(cluster, primary, standbys)
        standbys = [other, next(n for n in cluster.nodes if n not in (primary, other))]
        on_new_primary = set(primary.query("SELECT round_no, writer, seq FROM acked",
                                           dbname="postgres"))
        lost = set(acknowledged) - on_new_primary
        assert not lost, f"round {round_no}: {len(lost)} of {len(acknowledged)} acknowledged commits lost"
        print(f"round {round_no}: {len(load.acknowledged)} commits acknowledged, none lost")
        assert primary.scalar("SHOW synchronous_standby_names", dbname="postgres").startswith("ANY 1")
        quorum = "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'quorum'"
        wait_until(lambda node=primary, sql=quorum: node.scalar(sql, dbname="postgres") == 2,
                   WAIT_SECONDS, "both standbys to confirm commits of the new primary")


def test_a_commit_no_standby_confirmed_is_not_acknowledged(cluster_factory):
    cluster = cluster_factory(standby_names=("standby1",))
    primary, standby = cluster.nodes
    primary.query("CREATE TABLE acked (id integer PRIMARY KEY)", dbname="postgres")
    cluster.pg_ctl(standby, "-m", "fast", "-w", "stop")
    engine = make_engine(_url(primary, application_name="writer"))
    outcome: list[BaseException | None] = []

    def write() -> None:
        try:
            with engine.begin() as connection:
                connection.execute(text("INSERT INTO acked VALUES (1)"))
            outcome.append(None)
        except OperationalError as error:
            outcome.append(error)

    writer = threading.Thread(target=write, daemon=True)
    try:
        writer.start()
        waiting = "SELECT pid FROM pg_stat_activity WHERE application_name = 'writer' AND wait_event = 'SyncRep'"
        pid = wait_until(lambda: primary.query(waiting, dbname="postgres"), WAIT_SECONDS,
                         "the commit to wait for the standby")[0][0]
        # A cancelled wait commits on the primary alone and reports success with a warning.
        primary.query("SELECT pg_cancel_backend(%s)", (pid,), dbname="postgres")
        writer.join(WAIT_SECONDS)
        assert primary.scalar("SELECT count(*) FROM acked", dbname="postgres") == 1
        assert len(outcome) == 1 and isinstance(outcome[0], OperationalError)
        assert "not confirmed by a synchronous standby" in str(outcome[0])

        # The API's engine bounds its waits: with no standby, a commit gives up within the
        # statement timeout and a margin (the client hears 503), rather than hang or succeed.
        bounded = make_engine(_url(primary), connect_s=2, statement_s=1)
        started = time.monotonic()
        with pytest.raises(OperationalError), bounded.begin() as connection:
            connection.execute(text("INSERT INTO acked VALUES (2)"))
        assert time.monotonic() - started < 3
        bounded.dispose()
    finally:
        engine.dispose()
