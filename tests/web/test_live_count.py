"""The operator's live count: placed phones, phones holding their track for the current start,
playing; staff only."""

from __future__ import annotations

import time

from sqlalchemy import text

from tests.helpers.factories import auth, make_scene, make_user, multipart, png, quadrant_frame


def test_track_fetches_are_counted_per_start_and_only_staff_read_them(client, session):
    _, owner = make_user(session, "scene_admin")
    scene = make_scene(client, owner)
    sid = scene["id"]
    guests = []
    for _ in range(3):
        token = client.post("/api/guests", json={}).json["token"]
        guests.append((token, client.post(f"/api/scenes/{sid}/join", headers=auth(token)).json["number"]))
    session.execute(text("UPDATE pixels SET status = 'located', x = 10 + number, y = 10, sigma = 0.1, "
                         "confidence = 1, located_by = 'qr', located_at = now() WHERE scene_id = :s"), {"s": sid})
    session.execute(text("UPDATE scenes SET layout_version = layout_version + 1 WHERE id = :s"), {"s": sid})
    session.commit()
    frame = png(quadrant_frame(((9, 9, 9),) * 4, 32, 16))
    assert client.post(f"/api/scenes/{sid}/frames", headers=auth(owner),
                       **multipart(file=(frame, "f.png"), duration_ms="60000")).status_code == 201
    url = f"/api/scenes/{sid}/show/phones"
    assert client.get(url, headers=auth(owner)).json["tracks_fetched"] == 0

    start = client.post(f"/api/scenes/{sid}/show", headers=auth(owner),
                        json={"start_at_ms": time.time() * 1000 + 600}).json["start_ms"]
    for token, number in guests[:2]:
        for _ in range(2):  # fetched twice, counted once
            assert client.get(f"/api/scenes/{sid}/pixels/{number}/track", headers=auth(token)).status_code == 200
    before = client.get(url, headers=auth(owner)).json
    assert before == {"located": 3, "tracks_fetched": 2, "playing": 0, "phase": "before", "start_ms": start}
    time.sleep(0.7)
    assert client.get(url, headers=auth(owner)).json["playing"] == 2

    # A new start counts afresh.
    client.post(f"/api/scenes/{sid}/show", headers=auth(owner), json={"start_at_ms": time.time() * 1000 + 60_000})
    assert client.get(url, headers=auth(owner)).json["tracks_fetched"] == 0
    assert client.get(url, headers=auth(guests[0][0])).status_code == 403
