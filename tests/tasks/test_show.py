"""A scene driven end to end through a real Celery worker on the real Redis: frames uploaded,
phones located from a crowd photo, colour maps built by the worker because the locate job
changed the layout, then tracks and polls whose colours are the frame's at each phone; a layout
change makes the old maps unservable at once and the worker builds the new ones."""

from __future__ import annotations

import time

import numpy as np
import pytest
from sqlalchemy import select

from c3s import show
from c3s.models import Pixel
from c3s.show import unpack_track
from c3s.tasks import send
from c3s.vision.colormap import ColorMapper
from c3s.vision.crowd import render_crowd
from tests.helpers import factories
from tests.helpers.factories import (
    QUADRANTS,
    add_photo_pixels,
    auth,
    make_scene,
    make_user,
    multipart,
    photo_anchors,
    pixel_token,
    png,
)
from tests.tasks.test_locate_qr import jpeg, upload, wait_for

pytestmark = pytest.mark.slow

SCENE_W, SCENE_H = 12.0, 8.0
FRAME_W, FRAME_H = 240, 160
FRAME_MS = 60_000


def quadrant_frame(colors) -> np.ndarray:
    return factories.quadrant_frame(colors, FRAME_W, FRAME_H)


def hex_of(rgb) -> str:
    return "#" + bytes(int(c) for c in rgb).hex()


def wait_until(check, what: str, timeout_s: float = 90):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen within {timeout_s} s")


@pytest.fixture()
def stand(worker_app, session):
    """A 12 x 8 m stand (fit stretch) whose phones are those of a rendered crowd photo."""
    client = worker_app.test_client()
    photo = render_crowd(seed=7, width=2000, height=1500, cols=10, rows=7, module_px=(4.0, 6.0),
                         n_anchors=6, n_foreign=3, scene_id=1)
    _, owner = make_user(session, "scene_admin")
    scene = make_scene(client, owner, width=SCENE_W, height=SCENE_H, anchors=photo_anchors(photo), fit="stretch")
    assert scene["id"] == 1
    add_photo_pixels(session, photo, scene_id=1, width=SCENE_W, height=SCENE_H)
    _, observer = make_user(session, ("observer", 1))
    return client, owner, observer, photo, worker_app.extensions["c3s_show"]


def located(session) -> tuple[list[int], np.ndarray]:
    session.expire_all()
    rows = session.execute(select(Pixel.number, Pixel.x, Pixel.y)
                           .where(Pixel.scene_id == 1, Pixel.status == "located").order_by(Pixel.number)).all()
    return [r[0] for r in rows], np.array([(r[1], r[2]) for r in rows])


def test_frames_photo_worker_maps_track_and_poll(stand, session):
    client, owner, observer, photo, reader = stand
    for colors in QUADRANTS:
        response = client.post("/api/scenes/1/frames", headers=auth(owner),
                               **multipart(file=(png(quadrant_frame(colors)), "q.png"), duration_ms=str(FRAME_MS)))
        assert response.status_code == 201, response.json
    # Nothing is located yet: the frames alone give the worker nothing to build.
    assert reader.maps(reader.state(1)) is None

    job = wait_for(client, observer, 1, upload(client, observer, 1, jpeg(photo.image))["id"])
    assert job["status"] == "done" and job["stats"]["pixels_located"] >= 30
    # The locate job queued the build itself: wait for the worker's maps without asking the API
    # (whose reads would queue a build too).
    state = reader.state(1)
    maps = wait_until(lambda: reader.maps(state), "the worker building the maps after the locate job")
    numbers, positions = located(session)
    assert maps.pixels == len(numbers)

    start_ms = round(show.now_ms()) - 90_000  # the second frame shows
    started = client.post("/api/scenes/1/show", headers=auth(owner), json={"start_at_ms": start_ms})
    assert started.status_code == 200 and started.json["maps_version"] == state.version
    mappers = ColorMapper.build(positions, (SCENE_W, SCENE_H), (FRAME_H, FRAME_W), fit="stretch")
    expected = [[hex_of(c) for c in mappers.colors(quadrant_frame(colors))] for colors in QUADRANTS]
    inside = 0
    for k, number in enumerate(numbers):
        body = client.get(f"/api/scenes/1/pixels/{number}/track", headers=auth(owner)).json
        assert body["colors"] == [expected[0][k], expected[1][k]] and body["start_ms"] == start_ms
        poll = client.get(f"/api/scenes/1/pixels/{number}/color").json
        assert poll == {"color": expected[1][k], "frame": 1, "until_ms": start_ms + 2 * FRAME_MS,
                        "status": "playing"}
        x, y = positions[k]
        if abs(x - SCENE_W / 2) > 1.2 and abs(y - SCENE_H / 2) > 1.2:  # footprint in one quadrant
            quadrant = (2 if y > SCENE_H / 2 else 0) + (1 if x > SCENE_W / 2 else 0)
            assert body["colors"] == [hex_of(QUADRANTS[0][quadrant]), hex_of(QUADRANTS[1][quadrant])]
            inside += 1
    assert inside >= 10
    binary = client.get(f"/api/scenes/1/pixels/{numbers[0]}/track",
                        headers={"Accept": "application/octet-stream", **auth(owner)})
    assert unpack_track(binary.data)["colors"] == [expected[0][0], expected[1][0]]

    # The task delivered again leaves the same maps.
    with client.application.app_context():
        send(show.BUILD_TASK, 1)
    time.sleep(1.0)
    assert client.get(f"/api/scenes/1/pixels/{numbers[0]}/track", headers=auth(owner)).json["maps_version"] == state.version


def test_a_layout_change_is_never_served_stale_and_the_worker_rebuilds(stand, session):
    client, owner, observer, photo, reader = stand
    response = client.post("/api/scenes/1/frames", headers=auth(owner),
                           **multipart(file=(png(quadrant_frame(QUADRANTS[0])), "q.png")))
    assert response.status_code == 201
    assert wait_for(client, observer, 1, upload(client, observer, 1, jpeg(photo.image))["id"])["status"] == "done"
    old_state = reader.state(1)
    wait_until(lambda: reader.maps(old_state), "the first build")
    numbers, _ = located(session)
    victim, other = numbers[0], numbers[-1]
    own = auth(pixel_token(session, 1, other))  # the pixel's own token: served by the fast path
    old = client.get(f"/api/scenes/1/pixels/{other}/track", headers=own).json

    excluded = client.post(f"/api/scenes/1/pixels/{victim}/exclude", headers=auth(owner),
                           json={"reason": "left the stand"})
    assert excluded.status_code == 200
    # At once: the old maps are not served to anyone, and a build is queued.
    answer = client.get(f"/api/scenes/1/pixels/{other}/track", headers=own)
    assert answer.status_code == 409 and answer.json["detail"]["reason"] == "building"
    assert answer.json["detail"]["maps_version"] != old["maps_version"]

    def rebuilt():
        response = client.get(f"/api/scenes/1/pixels/{other}/track", headers=own)
        return response.json if response.status_code == 200 else None

    new = wait_until(rebuilt, "the worker rebuilding the maps")
    assert new["maps_version"] == reader.state(1).version != old["maps_version"]
    gone = client.get(f"/api/scenes/1/pixels/{victim}/color")
    assert gone.status_code == 404 and gone.json["detail"]["reason"] == "excluded"
