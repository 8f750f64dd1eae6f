"""Backups by ops/cron taken on a real standby: restore equal to the primary, replay resumed after
success and after failure, clear failures that leave nothing looking complete, retention, and
restores that refuse damaged backups."""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from .conftest import WAIT_SECONDS, free_ports, make_owned_dir, wait_until

DAY = 24 * 3600


def backup_env(cluster, backup_dir: Path, standby=None, **extra) -> dict[str, str]:
    standby = standby or cluster.standbys[0]
    return {"BACKUP_PGHOST": "127.0.0.1", "BACKUP_PGPORT": str(standby.port),
            "BACKUP_PGUSER": standby.superuser, "BACKUP_DATABASES": "c3s",
            "BACKUP_DIR": str(backup_dir), **extra}


def restore_env(cluster) -> dict[str, str]:
    return {"RESTORE_PGHOST": "127.0.0.1", "RESTORE_PGPORT": str(cluster.primary.port),
            "RESTORE_PGUSER": cluster.primary.superuser}


def conninfo(node, dbname: str) -> str:
    return f"host=127.0.0.1 port={node.port} user={node.superuser} dbname={dbname}"


def complete_looking(directory: Path) -> list[str]:
    """Files a restore or an operator could take for a backup."""
    return sorted(p.name for p in directory.iterdir()
                  if p.name.endswith((".dump", ".sha256")) or ".dump" in p.name)


def database_exists(node, name: str) -> bool:
    return node.scalar("SELECT count(*) FROM pg_database WHERE datname = %s", (name,),
                       dbname="postgres") == 1


def replay_state(node) -> str:
    return node.scalar("SELECT pg_get_wal_replay_pause_state()", dbname="postgres")


@pytest.fixture(scope="module")
def standby_backup(pg_cluster):
    """One nightly backup taken on standby1: (script result, the .dump file)."""
    pg_cluster.wait_replayed()
    backup_dir = pg_cluster.root / "backups-nightly"
    result = pg_cluster.script("cron/backup-postgres.sh",
                               **backup_env(pg_cluster, backup_dir, BACKUP_KEEP_DAYS="7"))
    dumps = sorted(backup_dir.glob("c3s-*.dump"))
    assert len(dumps) == 1, sorted(p.name for p in backup_dir.iterdir())
    return result, dumps[0]


def test_backup_on_standby_pauses_replay_and_resumes_it(pg_cluster, standby_backup):
    result, dump = standby_backup
    standby1 = pg_cluster.standbys[0]
    assert f"WAL replay paused on 127.0.0.1:{standby1.port}" in result.stderr
    assert "WAL replay resumed" in result.stderr
    assert replay_state(standby1) == "not paused"
    # Resumed for real: a write made after the backup reaches the standby.
    pg_cluster.primary.query("INSERT INTO ops_check.scene_note VALUES (300001, 'after backup')")
    try:
        wait_until(lambda: standby1.scalar(
            "SELECT count(*) FROM ops_check.scene_note WHERE scene_id = 300001") == 1,
            WAIT_SECONDS, "standby1 to replay a write made after the backup")
    finally:
        pg_cluster.primary.query("DELETE FROM ops_check.scene_note WHERE scene_id = 300001")
        pg_cluster.wait_replayed()


def test_backup_files_are_complete_and_checksummed(standby_backup):
    _, dump = standby_backup
    assert dump.read_bytes()[:5] == b"PGDMP"  # pg_dump custom format
    sidecar = Path(f"{dump}.sha256")
    digest, name = sidecar.read_text().split()
    assert name == dump.name
    assert digest == hashlib.sha256(dump.read_bytes()).hexdigest()
    assert not [p for p in dump.parent.iterdir() if p.name.endswith(".partial")]


def test_restore_into_a_fresh_database_equals_the_primary(pg_cluster, standby_backup):
    _, dump = standby_backup
    pg_cluster.script("cron/restore-postgres.sh", str(dump), "c3s_restored",
                      **restore_env(pg_cluster))
    primary = pg_cluster.primary
    assert (primary.scalar("SELECT count(*) FROM ops_check.observation", dbname="c3s_restored")
            == primary.scalar("SELECT count(*) FROM ops_check.observation"))

    verified = pg_cluster.script("cron/verify-restore.sh", conninfo(primary, "c3s"),
                                 conninfo(primary, "c3s_restored"))
    tables = {name for (name,) in primary.query(
        "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables "
        "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')")}
    assert {"ops_check.observation", "ops_check.scene_note"} <= tables
    assert f"equal: {len(tables)} tables" in verified.stderr

    # The comparison notices one changed value in one row.
    primary.query("UPDATE ops_check.observation SET label = label || '!' WHERE id = 4243",
                  dbname="c3s_restored")
    changed = pg_cluster.script("cron/verify-restore.sh", conninfo(primary, "c3s"),
                                conninfo(primary, "c3s_restored"), check=False)
    assert changed.returncode == 1
    assert "DIFFERS: table ops_check.observation" in changed.stderr
    assert "scene_note" not in changed.stderr


def test_restore_refuses_an_existing_database(pg_cluster, standby_backup):
    _, dump = standby_backup
    before = pg_cluster.primary.scalar("SELECT count(*) FROM ops_check.observation")
    result = pg_cluster.script("cron/restore-postgres.sh", str(dump), "c3s", check=False,
                               **restore_env(pg_cluster))
    assert result.returncode == 1
    assert "database 'c3s' already exists" in result.stderr
    assert pg_cluster.primary.scalar("SELECT count(*) FROM ops_check.observation") == before


def test_restore_refuses_a_corrupted_or_unchecksummed_backup(pg_cluster, standby_backup):
    _, dump = standby_backup
    damaged_dir = make_owned_dir(pg_cluster.root / "damaged", 0o755)
    damaged = damaged_dir / dump.name
    shutil.copy(dump, damaged)
    shutil.copy(f"{dump}.sha256", f"{damaged}.sha256")
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0x01
    damaged.write_bytes(bytes(data))
    result = pg_cluster.script("cron/restore-postgres.sh", str(damaged), "c3s_from_damaged",
                               check=False, **restore_env(pg_cluster))
    assert result.returncode == 1
    assert "checksum mismatch" in result.stderr
    assert not database_exists(pg_cluster.primary, "c3s_from_damaged")

    os.unlink(f"{damaged}.sha256")
    result = pg_cluster.script("cron/restore-postgres.sh", str(damaged), "c3s_from_damaged",
                               check=False, **restore_env(pg_cluster))
    assert result.returncode == 1
    assert "backup is incomplete" in result.stderr
    assert not database_exists(pg_cluster.primary, "c3s_from_damaged")


def test_failing_dump_resumes_replay_and_keeps_old_backups(pg_cluster):
    backup_dir = make_owned_dir(pg_cluster.root / "backups-failing", 0o755)
    old = backup_dir / "c3s-20200101T000000Z.dump"
    old.write_bytes(b"PGDMP old")
    Path(f"{old}.sha256").write_text(f"{hashlib.sha256(b'PGDMP old').hexdigest()}  {old.name}\n")
    for path in (old, Path(f"{old}.sha256")):
        os.utime(path, (time.time() - 30 * DAY,) * 2)
    standby1 = pg_cluster.standbys[0]

    result = pg_cluster.script("cron/backup-postgres.sh", check=False, **backup_env(
        pg_cluster, backup_dir, BACKUP_DATABASES="no_such_database", BACKUP_KEEP_DAYS="7"))
    assert result.returncode != 0
    assert "pg_dump of database 'no_such_database'" in result.stderr
    assert "backup FAILED" in result.stderr
    assert "WAL replay resumed" in result.stderr
    assert replay_state(standby1) == "not paused"
    # Nothing new that looks like a backup; the old one survives a failed night.
    assert complete_looking(backup_dir) == [old.name, f"{old.name}.sha256"]


def test_unreachable_standby_fails_clearly(pg_cluster):
    backup_dir = pg_cluster.root / "backups-unreachable"
    (closed_port,) = free_ports(1)
    result = pg_cluster.script("cron/backup-postgres.sh", check=False, **backup_env(
        pg_cluster, backup_dir, BACKUP_PGPORT=str(closed_port)))
    assert result.returncode == 1
    assert f"cannot connect to the standby 127.0.0.1:{closed_port}" in result.stderr
    assert complete_looking(backup_dir) == []


def test_unwritable_backup_directory_fails_clearly(pg_cluster):
    backup_dir = pg_cluster.root / "backups-readonly"
    backup_dir.mkdir(mode=0o555)
    backup_dir.chmod(0o555)  # owned by the test runner, not writable by the server's user
    result = pg_cluster.script("cron/backup-postgres.sh", check=False,
                               **backup_env(pg_cluster, backup_dir))
    assert result.returncode == 1
    assert f"backup directory {backup_dir} is not writable" in result.stderr
    assert list(backup_dir.iterdir()) == []
    assert replay_state(pg_cluster.standbys[0]) == "not paused"


def test_backup_refuses_the_primary(pg_cluster):
    backup_dir = pg_cluster.root / "backups-primary"
    result = pg_cluster.script("cron/backup-postgres.sh", check=False, **backup_env(
        pg_cluster, backup_dir, standby=pg_cluster.primary))
    assert result.returncode == 1
    assert "is a primary, not a standby" in result.stderr
    assert complete_looking(backup_dir) == []


def test_retention_removes_only_old_backups_of_the_same_database(pg_cluster):
    backup_dir = make_owned_dir(pg_cluster.root / "backups-retention", 0o755)
    ages = {"c3s-20200101T000000Z.dump": 30, "c3s-20200102T000000Z.dump": 2,
            "other-20200101T000000Z.dump": 30, "notes.txt": 30}
    for name, days in ages.items():
        for path in (backup_dir / name, backup_dir / f"{name}.sha256"):
            path.write_text("x")
            os.utime(path, (time.time() - days * DAY,) * 2)
    if os.geteuid() == 0:
        for path in backup_dir.iterdir():
            shutil.chown(path, "postgres", "postgres")

    result = pg_cluster.script("cron/backup-postgres.sh",
                               **backup_env(pg_cluster, backup_dir, BACKUP_KEEP_DAYS="7"))
    assert "retention: removed c3s-20200101T000000Z.dump" in result.stderr
    names = {p.name for p in backup_dir.iterdir()}
    assert "c3s-20200101T000000Z.dump" not in names
    assert "c3s-20200101T000000Z.dump.sha256" not in names
    assert {"c3s-20200102T000000Z.dump", "other-20200101T000000Z.dump", "notes.txt"} <= names
    assert len([n for n in names if n.startswith("c3s-") and n.endswith(".dump")]) == 2


def test_backup_under_concurrent_writes_is_consistent_and_replay_holds_still(pg_cluster):
    """Writers keep committing on the primary during the backup: each transaction adds a tick
    and bumps a counter, so a consistent dump has exactly as many ticks as the counter says."""
    primary, standby1 = pg_cluster.primary, pg_cluster.standbys[0]
    primary.query("CREATE DATABASE c3s_load", dbname="postgres")
    primary.query("CREATE TABLE tick (id bigserial PRIMARY KEY, payload text NOT NULL);"
                  "CREATE TABLE tick_total (n integer NOT NULL); INSERT INTO tick_total VALUES (0)",
                  dbname="c3s_load")
    pg_cluster.wait_replayed()
    stop = threading.Event()
    committed = []

    def write():
        conn = primary.connect("c3s_load")
        conn.autocommit = False
        try:
            while not stop.is_set():
                with conn.cursor() as cur:
                    cur.execute("INSERT INTO tick (payload) VALUES (repeat('t', 200))")
                    cur.execute("UPDATE tick_total SET n = n + 1")
                conn.commit()
                committed.append(1)
        finally:
            conn.close()

    writer = threading.Thread(target=write)
    writer.start()
    try:
        wait_until(lambda: len(committed) > 50, WAIT_SECONDS, "the writer to get going")
        backup_dir = pg_cluster.root / "backups-under-load"
        result = pg_cluster.script("cron/backup-postgres.sh", **backup_env(
            pg_cluster, backup_dir, BACKUP_DATABASES="c3s_load"))
        during = len(committed)
        wait_until(lambda: len(committed) > during + 50, WAIT_SECONDS,
                   "more writes after the backup")
    finally:
        stop.set()
        writer.join(timeout=30)
    assert "replay moved" not in result.stderr  # the standby stood still during the dump

    (dump,) = backup_dir.glob("c3s_load-*.dump")
    pg_cluster.script("cron/restore-postgres.sh", str(dump), "c3s_load_restored",
                      **restore_env(pg_cluster))
    ticks, total = primary.query("SELECT (SELECT count(*) FROM tick), (SELECT n FROM tick_total)",
                                 dbname="c3s_load_restored")[0]
    assert 50 < ticks == total < len(committed)

    # Replay resumed and caught up with everything written during and after the backup.
    pg_cluster.wait_replayed()
    assert (standby1.query("SELECT count(*), max(id) FROM tick", dbname="c3s_load")
            == primary.query("SELECT count(*), max(id) FROM tick", dbname="c3s_load"))
