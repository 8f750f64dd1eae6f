"""Redis down, on PostgreSQL: a write that committed says so (starting the show answers 200 with
`maps_ready` false, never 500), and a read that needs the cache answers 503 JSON with
Retry-After. (PostgreSQL stopped and frozen: tests/ops/test_outage.py.)"""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers.factories import auth, make_scene, make_user, multipart, png, scene_row
from tests.ops.conftest import free_ports


@pytest.fixture()
def no_redis_client(clean_db, pg_url, tmp_path):
    """The API with Redis at a port where nothing listens."""
    from c3s.web import create_app

    app = create_app({"database_url": pg_url, "redis_url": f"redis://127.0.0.1:{free_ports(1)[0]}/0",
                      "instance_path": tmp_path / "instance", "testing": True})
    yield app.test_client()
    app.extensions["c3s"].database.dispose()


def test_starting_the_show_with_redis_down_reports_the_commit(no_redis_client, session):
    client = no_redis_client
    _, owner = make_user(session, "scene_admin", guest=True)
    scene = make_scene(client, owner)
    frame = client.post(f"/api/scenes/{scene['id']}/frames", headers=auth(owner),
                        **multipart(file=(png(np.zeros((8, 8, 3), np.uint8)), "f.png")))
    assert frame.status_code == 201, frame.json
    started = client.post(f"/api/scenes/{scene['id']}/show", headers=auth(owner), json={})
    assert started.status_code == 200, started.get_data()
    assert started.json["status"] == "playing" and started.json["maps_ready"] is False
    assert scene_row(session, scene["id"]).status == "playing"
    stopped = client.delete(f"/api/scenes/{scene['id']}/show", headers=auth(owner))
    assert stopped.status_code == 200 and stopped.json["status"] == "ready"


def test_reads_that_need_redis_answer_503_with_retry_after(no_redis_client, session):
    client = no_redis_client
    _, owner = make_user(session, "scene_admin", guest=True)
    scene = make_scene(client, owner)
    client.post(f"/api/scenes/{scene['id']}/frames", headers=auth(owner),
                **multipart(file=(png(np.zeros((8, 8, 3), np.uint8)), "f.png")))
    for path in (f"/api/scenes/{scene['id']}/show", f"/api/scenes/{scene['id']}/pixels/0/color"):
        answer = client.get(path)
        assert answer.status_code == 503, (path, answer.get_data())
        assert answer.headers["Retry-After"] and set(answer.json) == {"message", "detail"}
    health = client.get("/api/health")
    assert health.status_code == 503 and health.headers["Retry-After"]
    assert health.json["checks"]["redis"]["ok"] is False
