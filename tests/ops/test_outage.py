"""PostgreSQL stopped, then frozen (SIGSTOP): every route of the OpenAPI document answers 503
JSON with Retry-After within 3 s (the clock, which needs no database, answers 200). A throw-away
cluster of its own, so nothing else is stopped."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

import psycopg2
import pytest
from sqlalchemy import create_engine

from c3s.db import init_db
from tests.helpers.services import REDIS_URL
from tests.ops.conftest import build_cluster, make_owned_dir, stop_servers_under

pytestmark = pytest.mark.slow

DEADLINE_S = 3.0
NEEDS_NO_DATABASE = {("GET", "/api/time")}


@pytest.fixture()
def lone_primary(monkeypatch):
    # No standby to wait for: asynchronous, or every commit would wait (ops/postgres/README.md).
    monkeypatch.setenv("SYNC_STANDBY_NAMES", "")
    root = make_owned_dir(Path(tempfile.mkdtemp(prefix="c3s-outage-")))
    try:
        cluster = build_cluster(root, standby_names=())
        conn = cluster.primary.connect("postgres")
        with conn.cursor() as cur:
            cur.execute("CREATE DATABASE c3s")
        conn.close()
        url = f"postgresql://{cluster.primary.superuser}@127.0.0.1:{cluster.primary.port}/c3s"
        engine = create_engine(url.replace("postgresql://", "postgresql+psycopg2://"))
        init_db(engine)
        engine.dispose()
        yield cluster, url
    finally:
        _signal_cluster(root / "primary", signal.SIGCONT)
        stop_servers_under(root)
        shutil.rmtree(root, ignore_errors=True)


def _server_pids(pgdata: Path) -> list[int]:
    """The postmaster and every process it forked."""
    postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])
    children = [int(p) for p in os.listdir("/proc") if p.isdigit() and _parent(int(p)) == postmaster]
    return [postmaster, *children]


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _signal_cluster(pgdata: Path, sig: int) -> None:
    if not (pgdata / "postmaster.pid").exists():
        return
    for pid in _server_pids(pgdata):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _app_and_token(url: str, tmp_path):
    from c3s.web import create_app
    from tests.helpers.factories import make_scene

    app = create_app({"database_url": url, "redis_url": REDIS_URL, "instance_path": tmp_path / "instance",
                      "testing": True})
    client = app.test_client()
    db = app.extensions["c3s"].database.session()
    from tests.helpers.factories import make_user

    _, token = make_user(db, "admin", guest=True)
    db.close()
    make_scene(client, token)
    return app, client, token


def _operations(app) -> list[tuple[str, str]]:
    return sorted((m.upper(), p) for p, ops in app.spec["paths"].items() for m in ops)


def _every_route_answers_503(client, app, token) -> list[str]:
    values = {"scene_id": 1, "number": 0, "frame_id": 1, "job_id": 1, "user_id": 1, "permission": "observer"}
    problems = []
    for method, path in _operations(app):
        started = time.monotonic()
        body = {"email": "fan@example.org", "password": "correct horse battery"} \
            if path in ("/api/users", "/api/tokens") else {}
        answer = client.open(path.format(**values), method=method, json=body,
                             headers={"Authorization": f"Bearer {token}"})
        elapsed = time.monotonic() - started
        expected = 200 if (method, path) in NEEDS_NO_DATABASE else 503
        if answer.status_code != expected or elapsed > DEADLINE_S:
            problems.append(f"{method} {path}: {answer.status_code} after {elapsed:.2f} s "
                            f"{answer.get_data()[:120]!r}")
        elif expected == 503 and not (answer.is_json and answer.headers.get("Retry-After")):
            problems.append(f"{method} {path}: 503 without JSON or Retry-After")
    return problems


def test_a_stopped_then_frozen_database_answers_503_fast(lone_primary, tmp_path):
    cluster, url = lone_primary
    app, client, token = _app_and_token(url, tmp_path)
    assert client.get("/api/scenes/1", headers={"Authorization": f"Bearer {token}"}).status_code == 200

    cluster.pg_ctl(cluster.primary, "-m", "fast", "-w", "stop")
    problems = _every_route_answers_503(client, app, token)
    assert not problems, "\n".join(problems)

    cluster.pg_ctl(cluster.primary, "-w", "-l", str(cluster.root / "restart.log"), "start")
    deadline = time.monotonic() + 20
    while client.get("/api/scenes/1", headers={"Authorization": f"Bearer {token}"}).status_code != 200:
        assert time.monotonic() < deadline, "the API did not come back after the database restarted"
        time.sleep(0.2)

    _signal_cluster(cluster.primary.pgdata, signal.SIGSTOP)
    try:
        problems = _every_route_answers_503(client, app, token)
    finally:
        _signal_cluster(cluster.primary.pgdata, signal.SIGCONT)
    assert not problems, "\n".join(problems)
    deadline = time.monotonic() + 20
    while True:  # thawed: served again, the broken connections replaced
        try:
            if client.get("/api/scenes/1", headers={"Authorization": f"Bearer {token}"}).status_code == 200:
                break
        except psycopg2.Error:
            pass
        assert time.monotonic() < deadline, "the API did not recover after the database thawed"
        time.sleep(0.2)
    app.extensions["c3s"].database.dispose()
