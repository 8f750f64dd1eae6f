"""Real PostgreSQL 15 clusters for the ops tests: a primary and two hot standbys on free local
ports in a temporary directory, built by the scripts in ops/postgres (so the scripts are what is
tested) and run as the `postgres` user, since the server refuses root."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2
import pytest

REPO = Path(__file__).resolve().parents[2]
OPS = REPO / "ops"
PG_BIN = Path(os.environ.get("C3S_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
SCHEMA_SQL = REPO / "schema.sql"
OBSERVATION_ROWS = 5000
WAIT_SECONDS = 20

# Rows meant to be awkward for a digest: quotes, commas, newlines, non-ASCII, NULLs, bytea, jsonb,
# arrays, timestamps and floats.
OPS_CHECK_SQL = f"""
CREATE SCHEMA ops_check;
CREATE TABLE ops_check.observation (
    id bigserial PRIMARY KEY,
    pixel_no integer NOT NULL,
    x_scene double precision,
    y_scene double precision,
    confidence numeric(6, 4),
    label text,
    payload jsonb,
    raw bytea,
    tags text[],
    seen_at timestamptz NOT NULL
);
INSERT INTO ops_check.observation
    (pixel_no, x_scene, y_scene, confidence, label, payload, raw, tags, seen_at)
SELECT i % 997, i * 0.1, sqrt(i), (i % 10000) / 10000.0,
       CASE WHEN i % 7 = 0 THEN NULL ELSE format('pixel %s, "seat" %s; ''x''', i, i % 50) || E'\\n' || 'é☃' END,
       jsonb_build_object('i', i, 'even', i % 2 = 0),
       decode(md5(i::text), 'hex'),
       ARRAY['row', i::text],
       timestamptz '2026-01-01 00:00:00+00' + i * interval '1 second'
FROM generate_series(1, {OBSERVATION_ROWS}) AS i;
CREATE TABLE ops_check.scene_note (scene_id integer PRIMARY KEY, note text NOT NULL);
INSERT INTO ops_check.scene_note SELECT i, repeat('n', i) FROM generate_series(1, 300) AS i;
"""


def free_ports(count: int) -> list[int]:
    """Ports nothing listens on right now, distinct from each other."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def os_user() -> str:
    """The OS user the servers run as: `postgres` when the tests run as root, else ourselves."""
    return "postgres" if os.geteuid() == 0 else getpass.getuser()


def run_as_server_user(args: list[str], env: dict[str, str], timeout: float = 60,
                       check: bool = True) -> subprocess.CompletedProcess:
    """Run a command as the server's OS user and return its result (text output)."""
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    result = subprocess.run(prefix + args, env=env, cwd=REPO, capture_output=True, text=True,
                            timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} exited {result.returncode}\nstdout:\n{result.stdout}\n"
            f"stderr:\n{result.stderr}"
        )
    return result


def make_owned_dir(path: Path, mode: int = 0o700) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(mode)
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")
    return path


@dataclass
class Node:
    name: str
    pgdata: Path
    port: int
    superuser: str

    def connect(self, dbname: str = "c3s"):
        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user=self.superuser,
                                dbname=dbname, connect_timeout=5)
        conn.autocommit = True
        return conn

    def query(self, sql: str, params=None, dbname: str = "c3s") -> list[tuple]:
        conn = self.connect(dbname)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()

    def scalar(self, sql: str, params=None, dbname: str = "c3s"):
        return self.query(sql, params, dbname)[0][0]

    def running(self) -> bool:
        return (self.pgdata / "postmaster.pid").exists()


@dataclass
class Cluster:
    root: Path
    env: dict[str, str]
    primary: Node
    standbys: list[Node] = field(default_factory=list)

    @property
    def nodes(self) -> list[Node]:
        return [self.primary, *self.standbys]

    def script(self, path: str, *args: str, check: bool = True, timeout: float = 60,
               **env: str) -> subprocess.CompletedProcess:
        """Run one of the repository's ops scripts (path relative to ops/) with arguments and
        extra environment variables."""
        return run_as_server_user(["bash", str(OPS / path), *args], {**self.env, **env},
                                  timeout=timeout, check=check)

    def standby_env(self, node: Node) -> dict[str, str]:
        return {"STANDBY_NAME": node.name, "STANDBY_PGDATA": str(node.pgdata),
                "STANDBY_PORT": str(node.port)}

    def pg_ctl(self, node: Node, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return run_as_server_user([str(PG_BIN / "pg_ctl"), "-D", str(node.pgdata), *args],
                                  self.env, check=check)

    def wait_replayed(self, standbys: list[Node] | None = None, timeout: float = WAIT_SECONDS):
        """Block until every standby has replayed everything the primary has written so far."""
        lsn = self.primary.scalar("SELECT pg_current_wal_lsn()::text", dbname="postgres")
        for node in standbys if standbys is not None else self.standbys:
            wait_until(
                lambda node=node: node.scalar(
                    "SELECT pg_wal_lsn_diff(pg_last_wal_replay_lsn(), %s) >= 0", (lsn,),
                    dbname="postgres"),
                timeout, f"{node.name} to replay up to {lsn}")


def wait_until(predicate, timeout: float, what: str, interval: float = 0.1):
    """Poll `predicate` until it returns a true value; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except psycopg2.Error as exc:  # a server still starting or a standby still catching up
            last_error = exc
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what} (last error: {last_error})")


def build_cluster(root: Path, standby_names: tuple[str, ...] = ("standby1", "standby2")) -> Cluster:
    """A running primary with streaming standbys, built by make-primary.sh and make-standby.sh."""
    for binary in ("initdb", "pg_ctl", "pg_basebackup", "psql", "pg_dump", "pg_restore"):
        if not (PG_BIN / binary).is_file():
            pytest.fail(f"PostgreSQL 15 binary {PG_BIN / binary} is missing (apt-get install postgresql-15)")
    ports = free_ports(1 + len(standby_names))
    superuser = os_user()
    env = {
        **os.environ,
        "PG_BIN": str(PG_BIN),
        "PG_SUPERUSER": superuser,
        "PG_SOCKET_DIR": str(root),
        "PG_AUTH_METHOD": "trust",
        "PG_LISTEN_ADDRESSES": "127.0.0.1",
        "PG_WAIT_SECONDS": str(WAIT_SECONDS),
        # Throw-away clusters: skip fsync, which only costs time under a busy CI disk.
        "PG_EXTRA_CONF": "fsync = off",
        "PRIMARY_HOST": "127.0.0.1",
        "PRIMARY_PORT": str(ports[0]),
        "STANDBY_SLOTS": " ".join(standby_names),
    }
    cluster = Cluster(root, env, Node("primary", root / "primary", ports[0], superuser))
    cluster.script("postgres/make-primary.sh", PRIMARY_PGDATA=str(cluster.primary.pgdata))
    for name, port in zip(standby_names, ports[1:], strict=True):
        node = Node(name, root / name, port, superuser)
        cluster.standbys.append(node)
        cluster.script("postgres/make-standby.sh", **cluster.standby_env(node))
    return cluster


def stop_servers_under(root: Path) -> None:
    """Stop every server whose data directory is directly under `root` (also half-built ones)."""
    for pgdata in sorted(root.iterdir()):
        if (pgdata / "postmaster.pid").exists():
            run_as_server_user([str(PG_BIN / "pg_ctl"), "-D", str(pgdata), "-m", "immediate",
                                "-w", "stop"], dict(os.environ), check=False)


@pytest.fixture
def cluster_factory() -> Iterator:
    """Build throw-away clusters inside a test; all are stopped and removed afterwards."""
    roots: list[Path] = []

    def factory(**kwargs) -> Cluster:
        root = make_owned_dir(Path(tempfile.mkdtemp(prefix="c3s-ops-")))
        roots.append(root)
        return build_cluster(root, **kwargs)

    try:
        yield factory
    finally:
        for root in roots:
            stop_servers_under(root)
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """One primary and two standbys for the whole session, holding database `c3s` with the
    project's schema.sql (when present) and a few thousand rows in `ops_check` tables."""
    root = make_owned_dir(Path(tempfile.mkdtemp(prefix="c3s-ops-")))
    try:
        cluster = build_cluster(root)
        cluster.primary.scalar("SELECT 1", dbname="postgres")
        conn = cluster.primary.connect("postgres")
        try:
            with conn.cursor() as cur:
                cur.execute("CREATE DATABASE c3s")
        finally:
            conn.close()
        if SCHEMA_SQL.exists():
            loaded = subprocess.run(
                [str(PG_BIN / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                 "-p", str(cluster.primary.port), "-U", cluster.primary.superuser, "-d", "c3s",
                 "-f", str(SCHEMA_SQL)],
                capture_output=True, text=True, timeout=60,
            )
            if loaded.returncode != 0:
                pytest.fail(f"schema.sql does not load into PostgreSQL 15:\n{loaded.stderr}")
        conn = cluster.primary.connect("c3s")
        try:
            with conn.cursor() as cur:
                cur.execute(OPS_CHECK_SQL)
        finally:
            conn.close()
        cluster.wait_replayed()
        yield cluster
    finally:
        stop_servers_under(root)
        shutil.rmtree(root, ignore_errors=True)
