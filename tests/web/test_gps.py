"""GPS fixes through the API: projected onto a geo-referenced scene with the reported uncertainty,
a newer fix replacing the older one, and every unusable fix refused with its reason."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from c3s.models import LocateJob, Observation, Pixel
from c3s.positioning.geo import GeoReference, unproject
from tests.helpers.factories import auth, make_scene, make_user

GEO = {"geo_lat": 48.1372, "geo_lon": 11.5755, "geo_bearing_deg": 90.0, "geo_metres_per_unit": 1.0}


@pytest.fixture()
def field(client, session):
    """A 200 x 100 m festival field, its owner, and a pixel phone that joined it."""
    _, owner = make_user(session, "scene_admin")
    scene = make_scene(client, owner, method="gps", width=200.0, height=100.0, max_gps_accuracy_m=10.0, **GEO)
    _, phone = make_user(session, guest=True)
    joined = client.post(f"/api/scenes/{scene['id']}/join", headers=auth(phone)).json
    return scene, owner, phone, joined


def lat_lon(x, y, geo=GEO):
    ref = GeoReference(geo["geo_lat"], geo["geo_lon"], geo["geo_bearing_deg"], geo["geo_metres_per_unit"])
    lat, lon = unproject(ref, x, y)
    return float(lat), float(lon)


def post_fix(client, token, scene_id, number, **body):
    return client.post(f"/api/scenes/{scene_id}/pixels/{number}/gps", json=body, headers=auth(token))


def test_fix_locates_the_pixel_and_a_newer_fix_replaces_it(client, session, field):
    scene, owner, phone, joined = field
    calibration = joined["calibration"]
    assert calibration["method"] == "gps" and calibration["georeferenced"] is True
    assert calibration["max_accuracy_m"] == 10.0
    lat, lon = lat_lon(120.0, 40.0)
    response = post_fix(client, phone, scene["id"], joined["number"], lat=lat, lon=lon, accuracy_m=4.0)
    assert response.status_code == 200, response.json
    body = response.json
    assert body["x"] == pytest.approx(120.0, abs=1e-3) and body["y"] == pytest.approx(40.0, abs=1e-3)
    assert body["sigma"] == pytest.approx(4.0)
    assert body["pixel"]["status"] == "located" and body["pixel"]["located_by"] == "gps"
    assert body["pixel"]["sigma"] == pytest.approx(4.0)

    # A newer fix 30 m further east (+x with bearing 90) replaces the first, not averaged with it.
    lat, lon = lat_lon(150.0, 40.0)
    moved = post_fix(client, phone, scene["id"], joined["number"], lat=lat, lon=lon, accuracy_m=3.0)
    assert moved.status_code == 200
    assert moved.json["pixel"]["x"] == pytest.approx(150.0, abs=1e-3)
    assert session.scalar(select(func.count()).select_from(Observation)) == 1

    # The fixes' jobs name no stored file; deleting the scene still cleans up without an error.
    assert client.delete(f"/api/scenes/{scene['id']}", headers=auth(owner)).status_code == 204
    assert session.scalar(select(func.count()).select_from(LocateJob)) == 0


def test_scene_units_scale_position_and_uncertainty(client, session):
    _, owner = make_user(session, "scene_admin")
    geo = {**GEO, "geo_bearing_deg": 30.0, "geo_metres_per_unit": 2.0}
    scene = make_scene(client, owner, method="gps", width=100.0, height=50.0, **geo)
    _, phone = make_user(session, guest=True)
    number = client.post(f"/api/scenes/{scene['id']}/join", headers=auth(phone)).json["number"]
    lat, lon = lat_lon(70.0, 20.0, geo)
    body = post_fix(client, phone, scene["id"], number, lat=lat, lon=lon, accuracy_m=5.0).json
    assert (body["x"], body["y"]) == (pytest.approx(70.0, abs=1e-3), pytest.approx(20.0, abs=1e-3))
    assert body["sigma"] == pytest.approx(2.5)


@pytest.mark.parametrize(("fix", "status", "words"), [
    ({"lat": 91.0, "lon": 11.5, "accuracy_m": 3.0}, 422, "latitude must be within"),
    ({"lat": 48.1, "lon": 181.0, "accuracy_m": 3.0}, 422, "longitude must be within"),
    ({"lat": 48.1372, "lon": 11.5755, "accuracy_m": 25.0}, 422, "worse than this scene's limit of 10 m"),
    ({"lat": 48.1372, "lon": 11.5755, "accuracy_m": 0.0}, 422, "positive number"),
    ({"lat": 48.2, "lon": 11.5755, "accuracy_m": 3.0}, 422, "outside the scene"),
    ({"lat": 48.1372, "lon": 11.5755}, 422, "Validation error"),
    ({"lat": "north", "lon": 11.5755, "accuracy_m": 3.0}, 422, "Validation error"),
])
def test_unusable_fixes_are_refused_with_the_reason(client, session, field, fix, status, words):
    scene, _, phone, joined = field
    response = post_fix(client, phone, scene["id"], joined["number"], **fix)
    assert response.status_code == status, response.json
    assert words in response.json["message"]
    assert session.scalar(select(Pixel.status)) == "joined"
    assert session.scalar(select(func.count()).select_from(Observation)) == 0


def test_scene_without_geo_reference_and_foreign_pixels(client, session, field):
    scene, owner, phone, joined = field
    _, stranger = make_user(session, guest=True)
    lat, lon = lat_lon(10.0, 10.0)
    foreign = post_fix(client, stranger, scene["id"], joined["number"], lat=lat, lon=lon, accuracy_m=3.0)
    assert foreign.status_code == 403

    plain = make_scene(client, owner, method="gps", width=50.0, height=50.0)
    number = client.post(f"/api/scenes/{plain['id']}/join", headers=auth(phone)).json["number"]
    response = post_fix(client, phone, plain["id"], number, lat=lat, lon=lon, accuracy_m=3.0)
    assert response.status_code == 409
    assert "no geo-reference" in response.json["message"]
    assert "geo_lat" in response.json["detail"]["missing"]


def test_an_excluded_pixel_is_forbidden_and_one_that_left_must_join_again(client, session, field):
    scene, owner, phone, joined = field
    lat, lon = lat_lon(120.0, 40.0)
    left = client.delete(f"/api/scenes/{scene['id']}/join", headers=auth(phone))
    assert left.status_code == 200
    refused = post_fix(client, phone, scene["id"], joined["number"], lat=lat, lon=lon, accuracy_m=4.0)
    assert refused.status_code == 409 and "join the scene again" in refused.json["message"]
    client.post(f"/api/scenes/{scene['id']}/join", headers=auth(phone))
    excluded = client.post(f"/api/scenes/{scene['id']}/pixels/{joined['number']}/exclude", headers=auth(owner),
                           json={"reason": "laser pointer"})
    assert excluded.status_code == 200, excluded.json
    refused = post_fix(client, phone, scene["id"], joined["number"], lat=lat, lon=lon, accuracy_m=4.0)
    assert refused.status_code == 403 and "excluded" in refused.json["message"]
