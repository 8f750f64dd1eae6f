"""Sound in a 3-D venue through the API and a real worker: speakers with heights and delays, a
temperature range, and a phone located from a room-simulated recording."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select

from c3s.models import Pixel
from c3s.positioning.sound import recording_wav
from tests.helpers.factories import auth, make_scene, make_user
from tests.positioning.test_venue_sound import SEATS, SPEAKERS, recording
from tests.tasks.test_sound import upload, wait_for

pytestmark = pytest.mark.slow

DELAYS = [0.0, 35.0, 0.0, 60.0, 12.0, 0.0]


def test_speakers_with_heights_and_delays_locate_a_phone_in_3d(worker_app, session):
    client = worker_app.test_client()
    _, owner = make_user(session, "scene_admin")
    scene = make_scene(client, owner, method="sound", width=40.0, height=30.0, temperature_c=17.0,
                       temperature_max_c=23.0)
    assert scene["temperature_max_c"] == 23.0 and scene["humidity_pct"] is None
    body = {"speakers": [{"x": x, "y": y, "z": z, "delay_ms": d} for (x, y, z), d in zip(SPEAKERS, DELAYS, strict=True)]}
    put = client.put(f"/api/scenes/{scene['id']}/speakers", headers=auth(owner), json=body)
    assert put.status_code == 200, put.json
    got = client.get(f"/api/scenes/{scene['id']}/speakers", headers=auth(owner)).json
    assert [(s["z"], s["delay_ms"]) for s in got["speakers"]] == list(zip(SPEAKERS[:, 2], DELAYS, strict=True))
    period = got["period_ms"]
    _, phone = make_user(session, guest=True)
    joined = client.post(f"/api/scenes/{scene['id']}/join", headers=auth(phone)).json
    truth = np.array([26.0, 11.0, 2.5])
    clip = recording(truth, 31, delays=DELAYS, schedule_start_ms=period * 472_000_000)
    response = upload(client, phone, scene["id"], joined["number"], recording_wav(clip), clip.start_ms)
    assert response.status_code == 202, response.json
    job = wait_for(client, phone, scene["id"], joined["number"], response.json["id"])
    assert job["status"] == "done", job["reason"]
    stats = job["stats"]
    assert stats["placed"] is True and stats["pixels_located"] == 1
    assert abs(stats["z"] - truth[2]) < 2.0 and stats["uncertainty_m"] <= 0.25
    pixel = session.scalar(select(Pixel))
    assert pixel.status == "located" and np.hypot(pixel.x - truth[0], pixel.y - truth[1]) < 0.3
    assert 0 < pixel.confidence < 0.7


def test_seat_heights_from_the_seat_map_give_the_phone_height(worker_app, session):
    seats = [f"A,{i // 80},{i % 80},{x:g},{y:g},{z:g}" for i, (x, y, z) in enumerate(SEATS)]
    locate = _seated_phone(worker_app.test_client(), session, seats)
    truth = SEATS[1800] + (0.0, 0.0, 0.1)
    assert truth[2] > 3  # up on a tier
    job = locate(truth, 32)
    assert job["status"] == "done", job["reason"]
    assert job["stats"]["placed"] is True and abs(job["stats"]["z"] - truth[2]) < 0.5
    assert job["stats"]["uncertainty_z_m"] < 0.6


def test_a_fix_less_sure_than_half_a_seat_is_not_placed(worker_app, session):
    """Seats 4 cm apart (a seat map of phone-sized seats): no sound fix is that sure, so the job
    is done, says why, and the pixel stays unplaced."""
    grid = [(20 + 0.04 * i, 10 + 0.04 * j) for i in range(20) for j in range(20)]
    seats = [f"A,{k // 20},{k % 20},{x:g},{y:g},1.5" for k, (x, y) in enumerate(grid)]
    job = _seated_phone(worker_app.test_client(), session, seats)((20.4, 10.4, 1.5), 33)
    assert job["status"] == "done", job["reason"]
    assert job["stats"]["placed"] is False and job["stats"]["uncertainty_m"] > 0.02
    assert "not placed" in job["stats"]["note"] and job["stats"]["pixels_located"] == 0
    assert session.scalar(select(Pixel.status)) == "joined"


def _seated_phone(client, session, seat_rows: list[str]):
    """A sound scene with this seat map (CSV rows after the header) and SPEAKERS, and one phone
    joined; returns ``locate(truth, seed)``, which uploads its recording and waits for the job."""
    _, owner = make_user(session, "scene_admin")
    scene = make_scene(client, owner, method="sound", width=40.0, height=30.0, temperature_c=20.0)
    put = client.put(f"/api/scenes/{scene['id']}/seatmap", data="\n".join(["section,row,seat,x,y,z", *seat_rows]).encode(),
                     headers={**auth(owner), "Content-Type": "text/csv"})
    assert put.status_code == 200, put.json
    body = {"speakers": [{"x": x, "y": y, "z": z} for x, y, z in SPEAKERS]}
    speakers = client.put(f"/api/scenes/{scene['id']}/speakers", headers=auth(owner), json=body).json
    _, phone = make_user(session, guest=True)
    joined = client.post(f"/api/scenes/{scene['id']}/join", headers=auth(phone)).json

    def locate(truth, seed: int) -> dict:
        clip = recording(truth, seed, schedule_start_ms=speakers["period_ms"] * 472_000_000)
        response = upload(client, phone, scene["id"], joined["number"], recording_wav(clip), clip.start_ms)
        return wait_for(client, phone, scene["id"], joined["number"], response.json["id"])

    return locate
