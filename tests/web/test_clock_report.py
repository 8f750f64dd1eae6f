"""Phones report their clock uncertainty with their check-in; the staff read the distribution."""

from __future__ import annotations

import pytest

from tests.helpers.factories import auth, make_scene, make_user


def _joined_guest(client, scene_id: int) -> str:
    token = client.post("/api/guests", json={}).json["token"]
    assert client.post(f"/api/scenes/{scene_id}/join", headers=auth(token)).status_code == 201
    return token


def test_reported_uncertainties_reach_the_staff(client, session):
    _, owner = make_user(session, "scene_admin")
    scene = make_scene(client, owner)
    guests = [_joined_guest(client, scene["id"]) for _ in range(4)]
    for token, value in zip(guests[:3], (0.8, 2.5, 40.0), strict=True):
        answer = client.put(f"/api/scenes/{scene['id']}/me/clock", headers=auth(token), json={"uncertainty_ms": value})
        assert answer.status_code == 204
    # A second report replaces the first.
    client.put(f"/api/scenes/{scene['id']}/me/clock", headers=auth(guests[0]), json={"uncertainty_ms": 1.0})
    summary = client.get(f"/api/scenes/{scene['id']}/clock", headers=auth(owner)).json
    assert summary["reporting"] == 3 and summary["pixels"] == 4
    assert summary["median_uncertainty_ms"] == 2.5 and summary["p95_uncertainty_ms"] == 40.0
    assert summary["worst"][0] == {"number": 2, "uncertainty_ms": 40.0}
    pixels = client.get(f"/api/scenes/{scene['id']}/pixels", headers=auth(owner)).json["pixels"]
    assert [p["clock_uncertainty_ms"] for p in pixels] == [1.0, 2.5, 40.0, None]


@pytest.mark.parametrize("body", [{}, {"uncertainty_ms": -1}, {"uncertainty_ms": "NaN"},
                                  {"uncertainty_ms": 1e9}, {"uncertainty_ms": "soon"}])
def test_a_bad_report_is_a_422(client, session, body):
    _, owner = make_user(session, "scene_admin")
    scene = make_scene(client, owner)
    token = _joined_guest(client, scene["id"])
    answer = client.put(f"/api/scenes/{scene['id']}/me/clock", headers=auth(token), json=body)
    assert answer.status_code == 422 and "uncertainty_ms" in str(answer.json)


def test_only_a_joined_phone_reports_and_only_staff_read(client, session):
    _, owner = make_user(session, "scene_admin")
    scene = make_scene(client, owner)
    stranger = client.post("/api/guests", json={}).json["token"]
    answer = client.put(f"/api/scenes/{scene['id']}/me/clock", headers=auth(stranger), json={"uncertainty_ms": 1})
    assert answer.status_code == 404 and "joined" in answer.json["message"]
    assert client.get(f"/api/scenes/{scene['id']}/clock", headers=auth(stranger)).status_code == 403
    assert client.put(f"/api/scenes/{scene['id'] + 1000}/me/clock", headers=auth(stranger),
                      json={"uncertainty_ms": 1}).status_code == 404
