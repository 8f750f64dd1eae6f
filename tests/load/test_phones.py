"""20,000 simulated pixel phones join a scene (one request each), check in and fetch their
tracks from a separate load process, against gunicorn on the real PostgreSQL and Redis, with
zero errors; every phone has its own number, every check-in sees the show playing, and every
track matches the colour map the workers built."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import text
from sqlalchemy.orm import Session

from tests.helpers.factories import auth, make_scene, make_user, multipart
from tests.helpers.services import REDIS_URL

pytestmark = pytest.mark.slow
PHONES = int(os.environ.get("C3S_LOAD_PHONES", "20000"))
CONNECTIONS = 16
COLUMNS = 200
LOAD = Path(__file__).with_name("phones.py")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def server(pg_url, clean_db, redis_client, tmp_path):
    port = _free_port()
    env = {**os.environ, "C3S_DATABASE_URL": pg_url, "C3S_REDIS_URL": REDIS_URL,
           "C3S_INSTANCE_PATH": str(tmp_path / "instance"), "C3S_SECRET_KEY": "load-test-secret-key"}
    with open(tmp_path / "gunicorn.log", "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-w", "2", "-k", "gthread", "--threads", "4", "-b",
             f"127.0.0.1:{port}", "--log-level", "warning", "c3s.web.wsgi:app"],
            env=env, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.2)
    yield port, tmp_path / "instance"
    process.terminate()
    process.wait(timeout=30)


def _load(phase: str, port: int, scene_id: int, path: Path) -> dict:
    result = subprocess.run([sys.executable, str(LOAD), phase, str(port), str(scene_id), str(PHONES),
                             str(CONNECTIONS), str(path)], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout)
    print(json.dumps(figures))
    return figures


def test_twenty_thousand_phones_join_check_in_and_fetch_their_tracks(server, session, tmp_path, clean_db):
    from c3s.web import create_app

    port, instance = server
    app = create_app({"database_url": str(clean_db.url.render_as_string(hide_password=False)),
                      "redis_url": REDIS_URL, "instance_path": instance})
    client = app.test_client()
    _, owner = make_user(session, "scene_admin")
    # The stand: COLUMNS seats a row, one scene unit apart.
    rows = -(-PHONES // COLUMNS)
    scene = make_scene(client, owner, width=float(COLUMNS), height=float(rows))
    phones_file = tmp_path / "phones.json"

    joined = _load("join", port, scene["id"], phones_file)
    assert joined["errors"] == 0 and joined["completed"] == PHONES
    numbers = sorted(p["number"] for p in json.loads(phones_file.read_text()))
    assert numbers == list(range(PHONES))

    # Calibration stands in here: every phone gets a seat, row by row.
    with Session(clean_db) as db:
        db.execute(text(
            "UPDATE pixels SET x = (number % :side) + 0.5, y = (number / :side) + 0.5, sigma = 0.1, "
            "confidence = 1, located_by = 'seat', located_at = now(), status = 'located'"), {"side": COLUMNS})
        db.execute(text("UPDATE scenes SET layout_version = layout_version + 1"))
        db.commit()
    # A frame with a left/right split: left half red, right half blue.
    picture = np.zeros((rows, COLUMNS, 3), np.uint8)  # one frame pixel per scene unit
    picture[:, : COLUMNS // 2] = (255, 0, 0)
    picture[:, COLUMNS // 2 :] = (0, 0, 255)
    import io

    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format="PNG")
    uploaded = client.post(f"/api/scenes/{scene['id']}/frames", headers=auth(owner),
                           **multipart(file=(buffer.getvalue(), "split.png"), duration_ms="1000"))
    assert uploaded.status_code == 201, uploaded.json
    started = client.post(f"/api/scenes/{scene['id']}/show", headers=auth(owner), json={"loop": True})
    assert started.status_code in (200, 201), started.json
    deadline = time.monotonic() + 120
    while client.get(f"/api/scenes/{scene['id']}/show", headers=auth(owner)).json.get("maps_ready") is False:
        assert time.monotonic() < deadline, "colour maps not built within 120 s"
        time.sleep(0.5)

    checked = _load("checkin", port, scene["id"], phones_file)
    assert checked["errors"] == 0 and checked["completed"] == PHONES
    version = client.get(f"/api/scenes/{scene['id']}/show").json["maps_version"]
    for me in json.loads((tmp_path / "phones.json.checkin").read_text()):
        assert (me["me_number"], me["status"], me["show_status"]) == (me["number"], "located", "playing")
        assert me["maps_version"] == version

    tracks = _load("track", port, scene["id"], phones_file)
    assert tracks["errors"] == 0 and tracks["completed"] == PHONES
    for track in json.loads((tmp_path / "phones.json.track").read_text()):
        x, row = track["number"] % COLUMNS + 0.5, track["number"] // COLUMNS
        expected = "#ff0000" if x < COLUMNS / 2 - 1 else "#0000ff" if x > COLUMNS / 2 + 1 else None
        if row == rows - 1 and PHONES % COLUMNS:  # a part-filled last row reaches past its neighbours
            expected = None
        assert expected is None or track["colors"] == [expected]
    app.extensions["c3s"].database.dispose()
