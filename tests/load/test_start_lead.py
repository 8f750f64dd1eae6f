"""Phones never miss the start: 2,000 simulated phones check in on the pixel page's own schedule
against gunicorn on the real PostgreSQL and Redis; the operator starts the show with the default
lead; at least 99.9 % of the placed phones hold their track before the first frame."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from c3s.accounts import hash_token
from c3s.checkin import CHECKIN_JITTER, CHECKIN_MS, MIN_LEAD_MS
from tests.helpers.factories import auth, make_scene, make_user, multipart, png, quadrant_frame
from tests.helpers.services import REDIS_URL
from tests.load.test_phones import server  # noqa: F401 - the gunicorn fixture

pytestmark = pytest.mark.slow
PHONES = 2000
CHECKINS = Path(__file__).with_name("checkins.py")


def _placed_phones(engine, key: bytes, scene_id: int, width: float, height: float) -> list[dict]:
    """PHONES guests, each with a device token and a located pixel on a grid (calibration done)."""
    side = int(np.ceil(np.sqrt(PHONES)))
    now = datetime.now(UTC)
    phones = []
    with Session(engine) as db:
        ids = db.execute(text("INSERT INTO users (is_guest) SELECT true FROM generate_series(1, :n) "
                              "RETURNING id"), {"n": PHONES}).scalars().all()
        tokens, pixels = [], []
        for number, user_id in enumerate(ids):
            token = f"lead-test-{number}-{user_id}"
            tokens.append({"u": user_id, "h": hash_token(token, key), "c": now, "e": now + timedelta(hours=1)})
            pixels.append({"s": scene_id, "w": width, "ht": height, "u": user_id, "n": number,
                           "x": (number % side + 0.5) * width / side, "y": (number // side + 0.5) * height / side})
            phones.append({"token": token, "number": number})
        db.execute(text("INSERT INTO api_tokens (user_id, token_hash, kind, created_at, expires_at) "
                        "VALUES (:u, :h, 'device', :c, :e)"), tokens)
        db.execute(text("INSERT INTO pixels (scene_id, scene_width, scene_height, user_id, number, status, x, y, "
                        "sigma, located_by, confidence, located_at) VALUES (:s, :w, :ht, :u, :n, 'located', "
                        ":x, :y, 0.1, 'qr', 1, now())"), pixels)
        db.execute(text("UPDATE scenes SET layout_version = layout_version + 1 WHERE id = :s"), {"s": scene_id})
        db.commit()
    return phones


def test_placed_phones_hold_their_track_before_a_default_lead_start(server, session, clean_db, tmp_path):  # noqa: F811
    from c3s.web import create_app

    port, instance = server
    app = create_app({"database_url": clean_db.url.render_as_string(hide_password=False),
                      "redis_url": REDIS_URL, "instance_path": instance})
    client = app.test_client()
    _, owner = make_user(session, "scene_admin")
    scene = make_scene(client, owner, width=100.0, height=50.0)
    phones = _placed_phones(clean_db, app.config["C3S"].token_key_bytes(), scene["id"], 100.0, 50.0)
    frame = png(quadrant_frame(((200, 0, 0), (0, 200, 0), (0, 0, 200), (90, 90, 90)), 64, 32))
    assert client.post(f"/api/scenes/{scene['id']}/frames", headers=auth(owner),
                       **multipart(file=(frame, "f.png"), duration_ms="3000")).status_code == 201
    phones_file = tmp_path / "phones.json"
    phones_file.write_text(json.dumps(phones))

    # The phones settle into their schedule for one longest interval, then the operator starts
    # the show with the default lead; the run ends just after the start.
    settle_s = CHECKIN_MS * (1 + CHECKIN_JITTER) / 1000
    seconds = settle_s + MIN_LEAD_MS / 1000 + 1.0
    crowd = subprocess.Popen([sys.executable, str(CHECKINS), str(port), str(scene["id"]), str(phones_file),
                              str(seconds), "16"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(settle_s)
    started = client.post(f"/api/scenes/{scene['id']}/show", headers=auth(owner), json={})
    assert started.status_code in (200, 201), started.json
    start_ms = started.json["start_ms"]
    assert start_ms - time.time() * 1000 > MIN_LEAD_MS - 1000
    out, err = crowd.communicate(timeout=seconds + 120)
    assert crowd.returncode == 0, err[-3000:]
    figures = json.loads(out)
    got = figures.pop("got_track_ms").get(str(start_ms), {})
    in_time = sum(1 for at in got.values() if at < start_ms)
    print(json.dumps({**figures, "in_time": in_time, "share": in_time / PHONES,
                      "latest_before_start_ms": start_ms - max(got.values(), default=start_ms)}))
    assert figures["errors"] == 0, figures["first_errors"]
    assert in_time >= 0.999 * PHONES, (in_time, len(got))
    app.extensions["c3s"].database.dispose()
