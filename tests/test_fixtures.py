"""The real inputs in tests/fixtures/ (made by tests/fixtures/make_fixtures.py) go through the code
that reads them, and through the API, and come out where venue.json says they should."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.factories import auth, make_user, multipart

FIXTURES = Path(__file__).resolve().parent / "fixtures"
VENUE = json.loads((FIXTURES / "venue.json").read_text())
TRUTH = VENUE["truth"]


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_every_fixture_is_small_and_described():
    for name in TRUTH:
        assert (FIXTURES / name).stat().st_size < 40_000, name
    assert sorted(p.name for p in FIXTURES.iterdir() if p.suffix != ".py") == sorted([*TRUTH, "venue.json"])


def test_the_crowd_photo_shows_every_code():
    from c3s.vision.qr import decode_qr_codes, load_photo
    from c3s.vision.qrcode import parse_payload

    found = {parse_payload(d.payload) for d in decode_qr_codes(load_photo(fixture_bytes("crowd.jpg"),
                                                                           max_pixels=10_000_000))}
    assert sorted(p.number for p in found if p.anchor_key is None) == sorted(map(int, TRUTH["crowd.jpg"]["pixels"]))
    assert sorted(p.anchor_key for p in found if p.anchor_key) == sorted(a["key"] for a in VENUE["scene"]["anchors"])


def test_the_blink_clip_shows_every_phone_where_it_is():
    from c3s.vision.blink import decode_clip

    truth = dict(zip(TRUTH["blink.mp4"]["numbers"], TRUTH["blink.mp4"]["xy_img"], strict=True))
    result = decode_clip(FIXTURES / "blink.mp4")
    assert sorted(d.number for d in result.detections) == sorted(truth)
    for d in result.detections:
        assert np.hypot(d.x_img - truth[d.number][0], d.y_img - truth[d.number][1]) < 1.0, d


def test_the_recording_locates_its_phone():
    from c3s.positioning.sound import ChirpSchedule, locate_from_recording, parse_wav

    truth = TRUTH["recording.wav"]
    recording = parse_wav(fixture_bytes("recording.wav"), start_ms=truth["start_ms"])
    assert recording.sample_rate == truth["sample_rate_hz"]
    schedule = ChirpSchedule(len(VENUE["speakers"]), start_ms=truth["schedule_start_ms"], slot_ms=truth["slot_ms"],
                             chirp_ms=truth["chirp_ms"], repeats=truth["repeats"])
    speakers = np.array([(s["x"], s["y"]) for s in VENUE["speakers"]])
    fix = locate_from_recording(recording, speakers, schedule, temperature_c=VENUE["scene"]["temperature_c"])
    assert np.hypot(fix.x - truth["position"][0], fix.y - truth["position"][1]) < 0.1
    assert fix.speakers_heard == len(speakers)


def test_the_gif_and_the_seat_map_read_as_described():
    from c3s.positioning.seats import parse_seat_map
    from c3s.vision.media import MediaLimits, decode_media

    frames = decode_media(fixture_bytes("show.gif"), limits=MediaLimits())
    assert [f.duration_ms for f in frames] == TRUTH["show.gif"]["durations_ms"]
    assert frames[0].image.shape == (TRUTH["show.gif"]["height"], TRUTH["show.gif"]["width"], 3)
    assert len(parse_seat_map(fixture_bytes("seats.csv"))) == TRUTH["seats.csv"]["seats"]


@pytest.fixture()
def venue_scene(client, session):
    """The venue's scene made through the API, with as many joined phones as the photo shows."""
    _, owner = make_user(session, "scene_admin")
    scene = client.post("/api/scenes", json=VENUE["scene"], headers=auth(owner))
    assert scene.status_code == 201, scene.json
    for _ in TRUTH["crowd.jpg"]["pixels"]:
        _, phone = make_user(session, guest=True)
        assert client.post(f"/api/scenes/{scene.json['id']}/join", headers=auth(phone)).status_code == 201
    return scene.json["id"], owner


def test_the_fixtures_through_the_api(client, session, venue_scene):
    """The embedded default runs the locate job in process: the photo locates every phone."""
    scene_id, owner = venue_scene
    job = client.post(f"/api/scenes/{scene_id}/jobs", headers=auth(owner),
                      **multipart(file=(fixture_bytes("crowd.jpg"), "crowd.jpg")))
    assert job.status_code == 202, job.json
    job = client.get(f"/api/scenes/{scene_id}/jobs/{job.json['id']}", headers=auth(owner)).json
    assert job["status"] == "done", job
    pixels = client.get(f"/api/scenes/{scene_id}/pixels", headers=auth(owner)).json["pixels"]
    assert {p["status"] for p in pixels} == {"located"}
    for pixel in pixels:
        x, y = TRUTH["crowd.jpg"]["pixels"][str(pixel["number"])]
        assert np.hypot(pixel["x"] - x, pixel["y"] - y) < 0.05, pixel

    frames = client.post(f"/api/scenes/{scene_id}/frames", headers=auth(owner),
                         **multipart(file=(fixture_bytes("show.gif"), "show.gif")))
    assert frames.status_code == 201, frames.json
    assert [f["duration_ms"] for f in frames.json] == TRUTH["show.gif"]["durations_ms"]
    seats = client.put(f"/api/scenes/{scene_id}/seatmap", data=fixture_bytes("seats.csv"), content_type="text/csv",
                       headers=auth(owner))
    assert seats.status_code == 200, seats.json
