"""Scenes CRUD, joining as a pixel, leaving, listing, excluding, and calibration codes."""

from __future__ import annotations

import cv2
import numpy as np
import zxingcpp

from c3s.vision.qrcode import parse_payload
from tests.helpers.factories import auth, make_scene, make_user


def _guest(client):
    return client.post("/api/guests", json={}).json["token"]


def test_scene_crud_with_anchors(client, session):
    _, owner = make_user(session, "scene_admin")
    scene = make_scene(client, owner, anchors=[{"key": "A1", "x": 0, "y": 0}, {"key": "A2", "x": 100, "y": 50}])
    assert [a["key"] for a in scene["anchors"]] == ["A1", "A2"]
    listed = client.get("/api/scenes", headers=auth(owner)).json
    assert [s["id"] for s in listed] == [scene["id"]]
    outside = client.patch(f"/api/scenes/{scene['id']}", json={"anchors": [{"key": "A3", "x": 101, "y": 0}]},
                           headers=auth(owner))
    # Outside the size the scene has: refused for its state (409); outside the size the same
    # request gives: a bad request (422).
    assert outside.status_code == 409 and "outside" in outside.json["message"]
    inside_out = client.patch(f"/api/scenes/{scene['id']}", json={"width": 50, "anchors": [
        {"key": "A3", "x": 51, "y": 0}]}, headers=auth(owner))
    assert inside_out.status_code == 422 and "outside" in inside_out.json["message"]
    methods = client.get("/api/methods").json
    assert {m["code"] for m in methods} == {"qr", "blink", "gps", "sound", "seat"}


def test_join_gives_numbers_and_a_decodable_qr_code(client, session):
    _, owner = make_user(session, "scene_admin")
    scene = make_scene(client, owner)
    tokens = [_guest(client) for _ in range(3)]
    joined = [client.post(f"/api/scenes/{scene['id']}/join", headers=auth(t)).json for t in tokens]
    assert [j["number"] for j in joined] == [0, 1, 2]
    calibration = joined[1]["calibration"]
    assert calibration["method"] == "qr"
    png = client.get(calibration["png_url"], headers=auth(tokens[1]))
    assert png.status_code == 200 and png.mimetype == "image/png"
    image = cv2.imdecode(np.frombuffer(png.data, np.uint8), cv2.IMREAD_GRAYSCALE)
    decoded = zxingcpp.read_barcodes(image)
    assert [d.text for d in decoded] == [calibration["payload"]]
    payload = parse_payload(decoded[0].text)
    assert (payload.scene_id, payload.number) == (scene["id"], 1)
    assert client.get(calibration["png_url"], headers=auth(tokens[0])).status_code == 403
    svg = client.get(calibration["svg_url"], headers=auth(tokens[1]))
    assert svg.status_code == 200 and b"<svg" in svg.data


def test_duplicate_join_leave_rejoin_and_exclusion(client, session):
    _, owner = make_user(session, "scene_admin")
    scene = make_scene(client, owner)
    guest = _guest(client)
    url = f"/api/scenes/{scene['id']}/join"
    assert client.post(url, headers=auth(guest)).status_code == 201
    duplicate = client.post(url, headers=auth(guest))
    assert duplicate.status_code == 409 and duplicate.json["detail"]["number"] == 0
    assert client.get(f"/api/scenes/{scene['id']}/me", headers=auth(guest)).json["number"] == 0
    assert client.delete(url, headers=auth(guest)).json["status"] == "left"
    rejoined = client.post(url, headers=auth(guest))
    assert rejoined.status_code == 201 and rejoined.json["number"] == 0
    assert client.post(f"/api/scenes/{scene['id']}/pixels/0/exclude", json={"reason": "spam"},
                       headers=auth(owner)).status_code == 200
    refused = client.post(url, headers=auth(guest))
    assert refused.status_code == 403 and "excluded" in refused.json["message"]


def test_pixels_are_listed_in_pages(client, session):
    _, owner = make_user(session, "scene_admin")
    scene = make_scene(client, owner)
    for _ in range(5):
        client.post(f"/api/scenes/{scene['id']}/join", headers=auth(_guest(client)))
    page = client.get(f"/api/scenes/{scene['id']}/pixels?page=2&per_page=2", headers=auth(owner)).json
    assert page["total"] == 5 and [p["number"] for p in page["pixels"]] == [2, 3]
    bad = client.get(f"/api/scenes/{scene['id']}/pixels?per_page=0", headers=auth(owner))
    assert bad.status_code == 422


def test_scene_cannot_shrink_below_located_pixels(client, session):
    from c3s.models import Pixel, utcnow

    _, owner = make_user(session, "scene_admin")
    scene = make_scene(client, owner)
    client.post(f"/api/scenes/{scene['id']}/join", headers=auth(_guest(client)))
    pixel = session.query(Pixel).one()
    pixel.x, pixel.y, pixel.located_by, pixel.located_at, pixel.status = 90.0, 40.0, "qr", utcnow(), "located"
    session.commit()
    refused = client.patch(f"/api/scenes/{scene['id']}", json={"width": 80}, headers=auth(owner))
    assert refused.status_code == 409 and "shrink" in refused.json["message"]
    assert client.patch(f"/api/scenes/{scene['id']}", json={"width": 120}, headers=auth(owner)).status_code == 200


def test_a_scene_row_can_be_locked_on_postgresql(client, session):
    from c3s import scenes

    _, owner = make_user(session, "scene_admin")
    scene = make_scene(client, owner)
    locked = scenes.get_scene(session, scene["id"], for_update=True)
    assert locked.id == scene["id"] and locked.method.code == "qr"
    session.rollback()
