"""The show's API on PostgreSQL and Redis, with maps built in process (no broker: the embedded
task mode): the clock, starting and stopping, the timeline, tracks and polls whose colours are
the frame's at each pixel, every phase of a show, stale maps never served, and bad requests."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from sqlalchemy import update
from werkzeug.test import Client

from c3s import show
from c3s.models import Pixel, Scene
from c3s.show import unpack_track
from c3s.vision.colormap import ColorMapper, unpack_color_map
from tests.helpers import factories
from tests.helpers.factories import (
    QUADRANTS,
    add_pixel,
    auth,
    make_scene,
    make_user,
    multipart,
    pixel_token,
    png,
)

SCENE_W, SCENE_H = 100.0, 50.0
FRAME_W, FRAME_H = 200, 100
MINUTE = 60_000


def quadrant_frame(colors) -> np.ndarray:
    return factories.quadrant_frame(colors, FRAME_W, FRAME_H)


def grid_positions() -> list[tuple[float, float]]:
    """A 20 x 10 grid of phones 5 m apart, so footprints are about 5 m wide."""
    return [(2.5 + 5 * i, 2.5 + 5 * j) for j in range(10) for i in range(20)]


def quadrant_of(x: float, y: float) -> int:
    return (2 if y >= SCENE_H / 2 else 0) + (1 if x >= SCENE_W / 2 else 0)


def deep_inside(x: float, y: float) -> bool:
    """Far enough from the quadrant borders that the footprint sees one colour only."""
    return abs(x - SCENE_W / 2) > 6 and abs(y - SCENE_H / 2) > 6


def add_pixels(session, scene_id: int, positions, *, status="located", first_number=0) -> list[int]:
    numbers = []
    for k, xy in enumerate(positions):
        add_pixel(session, scene_id, first_number + k, size=(SCENE_W, SCENE_H), xy=xy, status=status)
        numbers.append(first_number + k)
    session.execute(update(Scene).where(Scene.id == scene_id)
                    .values(layout_version=Scene.layout_version + 1,
                            next_pixel_number=first_number + len(positions)))
    session.commit()
    return numbers


def upload(client, token, scene_id, frame, duration_ms=MINUTE):
    response = client.post(f"/api/scenes/{scene_id}/frames", headers=auth(token),
                           **multipart(file=(png(frame), "frame.png"), duration_ms=str(duration_ms)))
    assert response.status_code == 201, response.json
    return response.json[0]


@pytest.fixture()
def stage(app, client, session):
    """A 100 x 50 m scene (fit stretch) with 200 located phones and two one-minute frames."""
    _, owner = make_user(session, "scene_admin")
    scene = make_scene(client, owner, width=SCENE_W, height=SCENE_H, fit="stretch")
    positions = grid_positions()
    add_pixels(session, scene["id"], positions)
    frames = [upload(client, owner, scene["id"], quadrant_frame(colors)) for colors in QUADRANTS]
    return {"client": client, "owner": owner, "scene": scene["id"], "positions": positions,
            "frames": frames, "app": app}


def expected_colors(positions, frame_colors) -> list[str]:
    """What the colour mapper computes for these positions (the area average in linear light)."""
    mapper = ColorMapper.build(np.array(positions), (SCENE_W, SCENE_H), (FRAME_H, FRAME_W), fit="stretch")
    return ["#" + bytes(c).hex() for c in mapper.colors(quadrant_frame(frame_colors))]


def start(stage, start_ms, loop=False):
    response = stage["client"].post(f"/api/scenes/{stage['scene']}/show", headers=auth(stage["owner"]),
                                    json={"start_at_ms": start_ms, "loop": loop})
    assert response.status_code == 200, response.json
    return response.json


def poll(stage, number):
    return stage["client"].get(f"/api/scenes/{stage['scene']}/pixels/{number}/color")


def track(stage, number, **headers):
    """The track as the scene's staff read it (the fast path serves only the pixel's own token)."""
    return stage["client"].get(f"/api/scenes/{stage['scene']}/pixels/{number}/track",
                               headers={**auth(stage["owner"]), **headers})



def now_ms() -> float:
    return time.time() * 1000


# ------------------------------------------------------------------------------------ clock


def test_clock_echoes_t0_and_is_never_cached(client):
    before = now_ms()
    response = client.get("/api/time?t0=1234.5")
    after = now_ms()
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    assert response.json["t0"] == 1234.5 and before - 1 <= response.json["server_ms"] <= after + 1
    assert client.get("/api/time").json["t0"] is None
    assert client.get("/api/time?t0=1e3").status_code == 422  # digits, as the document's pattern says
    bad = client.get("/api/time?t0=yesterday")
    assert bad.status_code == 422 and "t0" in bad.json["message"]


# ---------------------------------------------------------------------- the show end to end


def test_timeline_start_and_stop(stage, session):
    client, scene = stage["client"], stage["scene"]
    timeline = client.get(f"/api/scenes/{scene}/show").json
    assert timeline["status"] == "calibrating" and timeline["start_ms"] is None
    assert timeline["frames"] == [{"id": f["id"], "duration_ms": MINUTE} for f in stage["frames"]]
    assert timeline["total_ms"] == 2 * MINUTE and timeline["maps_ready"] is True

    _, stranger = make_user(session, "scene_admin")
    refused = client.post(f"/api/scenes/{scene}/show", headers=auth(stranger), json={"loop": True})
    assert refused.status_code == 403
    assert client.post(f"/api/scenes/{scene}/show", json={}).status_code == 401

    before = now_ms()
    started = client.post(f"/api/scenes/{scene}/show", headers=auth(stage["owner"]), json={"loop": True}).json
    assert started["status"] == "playing" and started["loop"] is True
    assert before + show.DEFAULT_LEAD_MS - 5 <= started["start_ms"] <= now_ms() + show.DEFAULT_LEAD_MS + 5
    assert client.get(f"/api/scenes/{scene}/show").json["start_ms"] == started["start_ms"]

    stopped = client.delete(f"/api/scenes/{scene}/show", headers=auth(stage["owner"])).json
    assert stopped["status"] == "ready" and stopped["start_ms"] is None
    assert poll(stage, 0).json["status"] == "before"


def test_track_and_poll_colours_are_the_frame_at_each_pixel(stage):
    positions = stage["positions"]
    expected = [expected_colors(positions, colors) for colors in QUADRANTS]
    for (x, y), first, second in zip(positions, *expected, strict=True):
        if deep_inside(x, y):  # a footprint inside one quadrant is that quadrant's colour exactly
            assert first == "#" + bytes(QUADRANTS[0][quadrant_of(x, y)]).hex()
            assert second == "#" + bytes(QUADRANTS[1][quadrant_of(x, y)]).hex()
    start_ms = round(now_ms()) - 90_000  # 1.5 minutes in: the second frame shows
    timeline = start(stage, start_ms)
    for number in (0, 19, 45, 150, 199):
        body = track(stage, number).json
        assert body == {"number": number, "start_ms": start_ms, "loop": False,
                        "durations_ms": [MINUTE, MINUTE], "colors": [expected[0][number], expected[1][number]],
                        "maps_version": timeline["maps_version"], "status": "playing", "offset_ms": None}
        response = poll(stage, number)
        assert response.json == {"color": expected[1][number], "frame": 1, "until_ms": start_ms + 2 * MINUTE,
                                 "status": "playing"}
        max_age = int(response.headers["Cache-Control"].split("max-age=")[1])
        assert 25 <= max_age <= 30  # never outlasts the frame, which ends in 30 s

    binary = track(stage, 45, Accept="application/octet-stream")
    assert binary.mimetype == "application/octet-stream"
    assert binary.headers["X-C3S-Maps-Version"] == timeline["maps_version"]
    assert unpack_track(binary.data) == _without_status(track(stage, 45).json, start_ms)
    assert len(binary.data) < len(track(stage, 45).data) / 2


def _without_status(body: dict, start_ms: int) -> dict:
    return {k: v for k, v in body.items() if k != "status"} | {"start_ms": float(start_ms)}


def test_before_the_start_after_the_end_and_looping(stage):
    start_ms = round(now_ms()) + 5 * MINUTE
    start(stage, start_ms)
    body = poll(stage, 7).json
    assert body == {"color": "#000000", "frame": -1, "until_ms": start_ms, "status": "before"}
    assert stage["client"].get(f"/api/scenes/{stage['scene']}/show").json["phase"] == "before"

    start(stage, round(now_ms()) - 10 * MINUTE)  # two minutes of frames, ten minutes ago, once
    ended = poll(stage, 7)
    assert ended.json == {"color": "#000000", "frame": -1, "until_ms": None, "status": "ended"}
    assert ended.headers["Cache-Control"] == "public, max-age=1"

    # Looping, ten minutes in: five passes of two minutes, so the first frame again.
    start_ms = round(now_ms()) - 10 * MINUTE - 20_000
    start(stage, start_ms, loop=True)
    expected = expected_colors(stage["positions"], QUADRANTS[0])
    assert poll(stage, 7).json == {"color": expected[7], "frame": 0, "until_ms": start_ms + 10 * MINUTE + MINUTE,
                                   "status": "playing"}


def test_fast_path_and_flask_views_answer_alike(stage, session):
    start(stage, round(now_ms()) - 30_000)
    flask_only = Client(stage["app"].wsgi_app.wsgi_app)  # behind the fast path
    scene = stage["scene"]
    own = auth(pixel_token(session, scene, 12))
    for path in (f"/api/scenes/{scene}/pixels/12/track", f"/api/scenes/{scene}/pixels/12/color",
                 f"/api/scenes/{scene}/pixels/999/track", "/api/scenes/777/pixels/1/color",
                 f"/api/scenes/{scene}/show"):
        fast, slow = stage["client"].get(path, headers=own), flask_only.get(path, headers=own)
        assert (fast.status_code, fast.mimetype) == (slow.status_code, slow.mimetype), path
        fast_body, slow_body = fast.get_json(), slow.get_json()
        if "until_ms" in fast_body:  # the same frame, asked microseconds apart
            assert fast_body["until_ms"] == slow_body["until_ms"]
        assert fast_body == slow_body, path
    binary = {"Accept": "application/octet-stream", **own}
    assert (stage["client"].get(f"/api/scenes/{scene}/pixels/12/track", headers=binary).data
            == flask_only.get(f"/api/scenes/{scene}/pixels/12/track", headers=binary).data)
    spec = stage["client"].get("/api/openapi.json").json["paths"]
    for path in ("/api/time", "/api/scenes/{scene_id}/show", "/api/scenes/{scene_id}/pixels/{number}/track",
                 "/api/scenes/{scene_id}/pixels/{number}/color", "/api/scenes/{scene_id}/layout",
                 "/api/scenes/{scene_id}/frames/{frame_id}/map"):
        assert path in spec, path
    assert "security" not in spec["/api/scenes/{scene_id}/pixels/{number}/color"]["get"]


def test_layout_and_frame_maps_for_the_preview(stage, session):
    client, scene = stage["client"], stage["scene"]
    layout = client.get(f"/api/scenes/{scene}/layout", headers=auth(stage["owner"])).json
    assert layout["numbers"] == list(range(200)) and (layout["width"], layout["height"]) == (SCENE_W, SCENE_H)
    assert list(zip(layout["x"], layout["y"], strict=True)) == stage["positions"]
    response = client.get(f"/api/scenes/{scene}/frames/{stage['frames'][1]['id']}/map",
                          headers=auth(stage["owner"]))
    assert response.mimetype == "application/octet-stream"
    assert response.headers["X-C3S-Maps-Version"] == layout["maps_version"]
    colors = unpack_color_map(response.data, 200)
    assert ["#" + bytes(c).hex() for c in colors] == expected_colors(stage["positions"], QUADRANTS[1])

    _, pixel_user = make_user(session)
    assert client.get(f"/api/scenes/{scene}/layout", headers=auth(pixel_user)).status_code == 403
    assert client.get(f"/api/scenes/{scene}/frames/999/map", headers=auth(stage["owner"])).status_code == 404
    assert client.get(f"/api/scenes/{scene}/layout").status_code == 401


def test_excluded_unlocated_and_unknown_pixels_get_no_track(stage, session):
    client, scene = stage["client"], stage["scene"]
    add_pixels(session, scene, [(0, 0)], status="joined", first_number=200)
    unlocated = track(stage, 200)
    assert unlocated.status_code == 404 and unlocated.json["detail"]["reason"] == "not_located"
    assert "not located" in unlocated.json["message"]
    unknown = track(stage, 5000)
    assert unknown.status_code == 404 and unknown.json["detail"]["reason"] == "unknown"
    assert client.get("/api/scenes/999/pixels/1/track", headers=auth(stage["owner"])).status_code == 404

    excluded = client.post(f"/api/scenes/{scene}/pixels/3/exclude", headers=auth(stage["owner"]),
                           json={"reason": "laser pointer"})
    assert excluded.status_code == 200
    answer = track(stage, 3)
    assert answer.status_code == 404 and answer.json["detail"]["reason"] == "excluded"
    assert poll(stage, 3).status_code == 404


def test_a_show_with_no_frames(app, client, session):
    _, owner = make_user(session, "scene_admin")
    scene = make_scene(client, owner, width=SCENE_W, height=SCENE_H)["id"]
    add_pixels(session, scene, grid_positions()[:10])
    answer = client.get(f"/api/scenes/{scene}/pixels/1/track", headers=auth(owner))
    assert answer.status_code == 409 and answer.json["detail"]["reason"] == "no_frames"
    assert "no frames" in answer.json["message"]
    assert client.get(f"/api/scenes/{scene}/pixels/1/color").status_code == 409
    refused = client.post(f"/api/scenes/{scene}/show", headers=auth(owner), json={})
    assert refused.status_code == 409 and "no frames" in refused.json["message"]
    assert client.get(f"/api/scenes/{scene}/show").json["total_ms"] == 0


def test_stale_maps_are_never_served_after_positions_change(stage, session, monkeypatch):
    """A moved pixel bumps the layout: the old maps are never served again; the first poll queues
    one build (however many polls come), and its maps are served once built."""
    start(stage, round(now_ms()) - 10_000)
    old = track(stage, 0).json
    assert "maps_version" in old, old
    queued = []
    monkeypatch.setattr(stage["app"].extensions["c3s"], "send", lambda name, *a: queued.append((name, *a)))
    # Pixel 0 moves into the bottom-right quadrant (what a locate job's fusion commits).
    session.execute(update(Pixel).where(Pixel.scene_id == stage["scene"], Pixel.number == 0)
                    .values(x=90.0, y=40.0))
    session.execute(update(Scene).where(Scene.id == stage["scene"])
                    .values(layout_version=Scene.layout_version + 1))
    session.commit()
    for _ in range(5):
        for answer in (track(stage, 0), poll(stage, 0), track(stage, 150)):
            assert answer.status_code == 409 and answer.json["detail"]["reason"] == "building"
            assert answer.json["detail"]["maps_version"] != old["maps_version"]
            assert answer.headers["Retry-After"] == "1"
    assert queued == [(show.BUILD_TASK, stage["scene"])]

    with stage["app"].app_context():
        from c3s.web.context import services

        result = show.build_color_maps(session, services().store, services().redis, stage["scene"])
    assert result.status == "built" and result.reused_frames == 0
    new = track(stage, 0).json
    assert new["maps_version"] == result.version != old["maps_version"]
    assert new["colors"] == ["#ffffff", "#000000"]  # bottom-right of both frames
    assert old["colors"] == ["#ff0000", "#00ffff"]  # top-left


def test_frame_changes_change_the_version_and_retiming_recomputes_nothing(stage, session, monkeypatch):
    client, scene = stage["client"], stage["scene"]
    first = client.get(f"/api/scenes/{scene}/show").json
    frame_id = stage["frames"][0]["id"]
    retimed = client.patch(f"/api/scenes/{scene}/frames/{frame_id}", headers=auth(stage["owner"]),
                           json={"duration_ms": 500})
    assert retimed.status_code == 200
    second = client.get(f"/api/scenes/{scene}/show").json
    assert second["maps_version"] != first["maps_version"] and second["maps_ready"]
    assert track(stage, 0).json["durations_ms"] == [500, MINUTE]

    # Retimed again with no build queued (the broker is down): the build copies the maps of the
    # previous version.
    monkeypatch.setattr(stage["app"].extensions["c3s"], "send", _broker_down)
    client.patch(f"/api/scenes/{scene}/frames/{frame_id}", headers=auth(stage["owner"]), json={"duration_ms": 700})
    with stage["app"].app_context():
        from c3s.web.context import services

        result = show.build_color_maps(session, services().store, services().redis, scene)
    assert result.status == "built" and result.reused_frames == 2
    monkeypatch.undo()
    before = track(stage, 0).json["colors"]
    order = client.put(f"/api/scenes/{scene}/frames/order", headers=auth(stage["owner"]),
                       json={"frame_ids": [f["id"] for f in stage["frames"]][::-1]})
    assert order.status_code == 200
    assert track(stage, 0).json["colors"] == before[::-1]
    assert track(stage, 0).json["durations_ms"] == [MINUTE, 700]


def _broker_down(task_name: str, *_args) -> None:
    from kombu.exceptions import OperationalError

    raise OperationalError(f"the broker does not answer (sending {task_name})")


def test_the_embedded_default_keeps_maps_in_process(tmp_path, session):
    """No Redis, no PostgreSQL: SQLite and an in-process cache with the same versioning."""
    from c3s.db import init_db
    from c3s.web import create_app

    app = create_app({"instance_path": tmp_path / "instance", "testing": True})
    init_db(app.extensions["c3s"].database.engine)
    assert app.extensions["c3s"].redis is None
    client = app.test_client()
    db = app.extensions["c3s"].database.session()
    _, owner = make_user(db, "scene_admin")
    scene = make_scene(client, owner, width=SCENE_W, height=SCENE_H, fit="stretch")["id"]
    add_pixels(db, scene, grid_positions())
    upload(client, owner, scene, quadrant_frame(QUADRANTS[0]))
    start_ms = round(now_ms()) - 1000
    started = client.post(f"/api/scenes/{scene}/show", headers=auth(owner), json={"start_at_ms": start_ms})
    assert started.status_code == 200, started.json
    expected = expected_colors(grid_positions(), QUADRANTS[0])
    body = client.get(f"/api/scenes/{scene}/pixels/21/color").json
    assert body == {"color": expected[21], "frame": 0, "until_ms": start_ms + MINUTE, "status": "playing"}
    assert client.get(f"/api/scenes/{scene}/pixels/21/track", headers=auth(owner)).json["colors"] == [expected[21]]
    db.close()
    app.extensions["c3s"].database.engine.dispose()


def test_show_start_refuses_bad_times(stage):
    url = f"/api/scenes/{stage['scene']}/show"
    for body in ({"start_at_ms": -5}, {"start_at_ms": "soon"}, {"loop": "sometimes"}):
        response = stage["client"].post(url, headers=auth(stage["owner"]), data=json.dumps(body),
                                        content_type="application/json")
        assert response.status_code == 422, body
    scene = stage["client"].get(f"/api/scenes/{stage['scene']}", headers=auth(stage["owner"])).json
    assert scene["status"] == "calibrating"


def test_timeline_rows_are_read_once_per_version_and_tracks_read_alike_from_redis(stage, monkeypatch):
    reader = stage["app"].extensions["c3s_show"]
    state = reader.state(stage["scene"])
    assert reader.timeline(state) is reader.timeline(state)
    maps = reader.maps(state)
    assert maps is reader.maps(state)
    kept = [reader.track(maps, row) for row in range(200)]
    monkeypatch.setattr(reader, "TRACK_CACHE_BYTES", 0)  # one GETRANGE per track instead
    assert [reader.track(maps, row) for row in range(200)] == kept
    assert reader.track(maps, 200) is None


def test_a_frame_that_cannot_be_read_back_is_a_clear_conflict(stage, monkeypatch):
    client, scene = stage["client"], stage["scene"]
    with monkeypatch.context() as patched:  # uploaded while the broker is down: no build queued
        patched.setattr(stage["app"].extensions["c3s"], "send", _broker_down)
        added = upload(client, stage["owner"], scene, quadrant_frame(QUADRANTS[1]))
    with stage["app"].app_context():
        from c3s.frames import get_frame
        from c3s.web.context import db_session, services

        frame = get_frame(db_session(), db_session().get(Scene, scene), added["id"])
        services().store.delete(frame.file_id)
    first = track(stage, 0)  # the maps are missing: a build is queued (and run here, and fails)
    assert first.status_code == 409 and first.json["detail"]["reason"] == "building"
    second = track(stage, 0)
    assert second.status_code == 409 and second.json["detail"]["reason"] == "failed"
    assert second.json["message"] == (f"the colour maps could not be built: frame {added['id']}'s image is "
                                      "missing from the file store; delete the frame and upload it again")
    assert poll(stage, 0).status_code == 409


def test_a_light_show_check_leaves_the_frames_out(stage):
    url = f"/api/scenes/{stage['scene']}/show"
    full, light = stage["client"].get(url).json, stage["client"].get(f"{url}?frames=false").json
    assert "frames" not in light and light == {k: v for k, v in full.items() if k != "frames"}
    flask_only = Client(stage["app"].wsgi_app.wsgi_app)
    assert flask_only.get(f"{url}?frames=0").get_json() == light


def test_ids_no_database_could_hold_are_simply_not_found(stage):
    client, scene = stage["client"], stage["scene"]
    flask_only = Client(stage["app"].wsgi_app.wsgi_app)
    for path in ("/api/scenes/13245249474666092544/pixels/58/track", "/api/scenes/99999999999999999999/show",
                 f"/api/scenes/{scene}/pixels/99999999999999/color"):
        for answer in (client.get(path, headers=auth(stage["owner"])),
                       flask_only.get(path, headers=auth(stage["owner"]))):
            assert answer.status_code == 404, path
