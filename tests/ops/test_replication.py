"""Streaming replication built by ops/postgres: data reaches both standbys, standbys stay
read-only, each has its own slot, and lag.sh reports and flags lag."""

from __future__ import annotations

import csv
import io

import psycopg2
import pytest

from .conftest import WAIT_SECONDS, free_ports, wait_until


def lag_rows(stdout: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(stdout), delimiter="\t"))


def test_initial_data_is_identical_on_primary_and_standbys(pg_cluster):
    sql = ("SELECT count(*), md5(string_agg(md5(o::text), '' ORDER BY md5(o::text))) "
           "FROM ops_check.observation o")
    expected = pg_cluster.primary.query(sql)[0]
    assert expected[0] > 0
    for standby in pg_cluster.standbys:
        assert standby.query(sql)[0] == expected, standby.name


def test_writes_on_primary_appear_on_both_standbys(pg_cluster):
    pg_cluster.primary.query(
        "INSERT INTO ops_check.scene_note SELECT 100000 + i, 'replicated ' || i "
        "FROM generate_series(1, 250) AS i")
    count_sql = "SELECT count(*) FROM ops_check.scene_note WHERE scene_id > 100000"
    for standby in pg_cluster.standbys:
        wait_until(lambda standby=standby: standby.scalar(count_sql) == 250, WAIT_SECONDS,
                   f"the new rows on {standby.name}")
    pg_cluster.primary.query("DELETE FROM ops_check.scene_note WHERE scene_id > 100000")
    for standby in pg_cluster.standbys:
        wait_until(lambda standby=standby: standby.scalar(count_sql) == 0, WAIT_SECONDS,
                   f"the delete on {standby.name}")


def test_standbys_are_hot_and_read_only(pg_cluster):
    for standby in pg_cluster.standbys:
        assert standby.scalar("SELECT pg_is_in_recovery()") is True
        assert standby.scalar("SELECT count(*) FROM ops_check.scene_note") >= 300
        with pytest.raises(psycopg2.errors.ReadOnlySqlTransaction):
            standby.query("INSERT INTO ops_check.scene_note VALUES (-1, 'must fail')")


def test_each_standby_streams_through_its_own_slot(pg_cluster):
    slots = dict(pg_cluster.primary.query(
        "SELECT slot_name, active FROM pg_replication_slots WHERE slot_type = 'physical'",
        dbname="postgres"))
    assert slots == {"standby1": True, "standby2": True}
    streaming = pg_cluster.primary.query(
        "SELECT application_name FROM pg_stat_replication WHERE state = 'streaming' ORDER BY 1",
        dbname="postgres")
    assert [name for (name,) in streaming] == ["standby1", "standby2"]


def _standby_addresses(cluster) -> str:
    return " ".join(f"127.0.0.1:{node.port}" for node in cluster.standbys)


def test_lag_script_reports_every_standby_from_both_sides(pg_cluster):
    pg_cluster.wait_replayed()
    result = pg_cluster.script("postgres/lag.sh", LAG_STANDBYS=_standby_addresses(pg_cluster),
                               LAG_EXPECT_STANDBYS="2", LAG_MAX_SECONDS="30")
    rows = lag_rows(result.stdout)
    assert {(row["standby"], row["source"]) for row in rows} == {
        (name, source) for name in ("standby1", "standby2") for source in ("primary", "standby")}
    for row in rows:
        assert row["state"] == "streaming", row
        if row["replay_lag_bytes"]:  # the primary may not have a replay report yet
            assert int(row["replay_lag_bytes"]) >= 0
        if row["source"] == "standby":  # caught up: at most a record or two in flight
            assert 0 <= int(row["replay_lag_bytes"]) < 100000, row
            assert 0.0 <= float(row["replay_lag_seconds"]) < 30, row


def test_lag_script_flags_a_standby_whose_replay_stopped(pg_cluster):
    standby2 = pg_cluster.standbys[1]
    standby2.query("SELECT pg_wal_replay_pause()")
    try:
        pg_cluster.primary.query(
            "INSERT INTO ops_check.scene_note SELECT 200000 + i, repeat('lag', 100) "
            "FROM generate_series(1, 2000) AS i")

        def flagged():
            result = pg_cluster.script(
                "postgres/lag.sh", check=False, LAG_STANDBYS=_standby_addresses(pg_cluster),
                LAG_MAX_BYTES="100000")
            rows = {(r["standby"], r["source"]): r for r in lag_rows(result.stdout)}
            behind = rows[("standby2", "primary")]["replay_lag_bytes"]
            return result.returncode == 2 and behind and int(behind) > 100000 and result

        result = wait_until(flagged, WAIT_SECONDS, "lag.sh to flag standby2")
        rows = {(r["standby"], r["source"]): r for r in lag_rows(result.stdout)}
        assert rows[("standby2", "standby")]["state"] == "replay-paused"
        assert int(rows[("standby2", "standby")]["replay_lag_bytes"]) > 100000
        assert "standby2 (primary): replay lag" in result.stderr
        assert "standby1" not in result.stderr  # the healthy standby is not blamed
    finally:
        standby2.query("SELECT pg_wal_replay_resume()")
        pg_cluster.primary.query("DELETE FROM ops_check.scene_note WHERE scene_id > 200000")
    pg_cluster.wait_replayed()


def test_lag_script_flags_missing_standbys_and_an_unreachable_primary(pg_cluster):
    result = pg_cluster.script("postgres/lag.sh", check=False, LAG_EXPECT_STANDBYS="3")
    assert result.returncode == 2
    assert "expected 3 streaming standbys, the primary sees 2" in result.stderr

    (closed_port,) = free_ports(1)
    result = pg_cluster.script("postgres/lag.sh", check=False, PRIMARY_PORT=str(closed_port))
    assert result.returncode == 1
    assert f"cannot query pg_stat_replication on the primary 127.0.0.1:{closed_port}" in result.stderr


def test_make_standby_refuses_a_used_directory_and_leaves_no_half_copy(pg_cluster):
    standby1 = pg_cluster.standbys[0]
    result = pg_cluster.script("postgres/make-standby.sh", check=False,
                               **pg_cluster.standby_env(standby1))
    assert result.returncode == 1
    assert "is not empty; set STANDBY_REBUILD=1" in result.stderr
    assert standby1.scalar("SELECT status FROM pg_stat_wal_receiver", dbname="postgres") == "streaming"

    target = pg_cluster.root / "standby-without-slot"
    (port,) = free_ports(1)
    result = pg_cluster.script("postgres/make-standby.sh", check=False, STANDBY_NAME="standby9",
                               STANDBY_PGDATA=str(target), STANDBY_PORT=str(port))
    assert result.returncode == 1
    assert f"pg_basebackup from 127.0.0.1:{pg_cluster.primary.port} failed" in result.stderr
    assert "slot 'standby9'" in result.stderr
    assert not target.exists() or list(target.iterdir()) == []
