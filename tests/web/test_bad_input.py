"""Malformed requests get a clear JSON 4xx, never a 500; the OpenAPI document lists every endpoint;
health reports each service."""

from __future__ import annotations

import pytest

from tests.helpers.factories import auth, make_scene, make_user


@pytest.mark.parametrize(("body", "status", "field"), [
    ("{not json", 400, None),  # not JSON at all
    ('["a", "list"]', 422, "_schema"),
    ('{"name": 5, "method": "qr", "width": "wide", "height": 1}', 422, "width"),
    ('{"name": "x", "method": "telepathy", "width": 1, "height": 1}', 422, "method"),
    ('{"name": "x", "method": "qr", "width": -1, "height": 1}', 422, "width"),
    ('{"name": "x", "method": "qr", "width": NaN, "height": 1}', 422, "width"),
])
def test_malformed_scene_bodies(client, session, body, status, field):
    _, owner = make_user(session, "scene_admin")
    response = client.post("/api/scenes", data=body, content_type="application/json", headers=auth(owner))
    assert response.status_code == status, response.data
    assert response.is_json and response.json["message"]
    if field is not None:  # the validation error names the field at fault, in detail and message
        assert field in response.json["detail"]["json"], response.json
        assert f"json.{field}: " in response.json["message"], response.json


def test_a_validation_message_names_the_first_fields_and_counts_the_rest(client):
    answer = client.post("/api/users", json={"email": "not mail", "password": "short"})
    assert answer.status_code == 422
    assert answer.json["message"] == ("Validation error: json.email: not an email address; json.password: "
                                      "the password must have at least 10 characters (and at most 1024)")
    from c3s.web.errors import validation_message

    detail = {"json": {"a": ["bad a"], "b": {"0": {"x": ["bad x"]}}, "c": ["bad c"], "d": ["bad d"]}}
    assert validation_message(detail) == ("Validation error: json.a: bad a; json.b.0.x: bad x; json.c: bad c "
                                          "(and 1 more in detail)")
    assert validation_message({}) == "Validation error"


def test_unknown_ids_and_routes(client, session):
    _, owner = make_user(session, "scene_admin")
    scene = make_scene(client, owner)
    expected = {"/api/scenes/999": (404, "scene 999 does not exist"),
                f"/api/scenes/{scene['id']}/pixels/7": (404, "no pixel number 7"),
                f"/api/scenes/{scene['id']}/frames/5/image": (404, "no frame 5"),
                # Only an administrator may look users up, so an unknown one is not revealed.
                "/api/users/999/permissions": (403, "'admin' permission"),
                "/api/nothing-here": (404, "not found")}
    for url, (status, message) in expected.items():
        response = client.get(url, headers=auth(owner))
        assert response.status_code == status, url
        assert response.is_json and message in response.json["message"], url
    wrong_method = client.put("/api/scenes", headers=auth(owner))
    assert wrong_method.status_code == 405 and wrong_method.is_json
    assert set(wrong_method.headers["Allow"].split(", ")) >= {"GET", "POST"}  # RFC 9110 asks for it


@pytest.mark.parametrize(("body", "status"), [
    ({"geo_lat": 48.1}, 422),  # a change sets the whole geo-reference or clears it
    ({"geo_lat": 48.1, "geo_lon": 11.5, "geo_bearing_deg": 0, "geo_metres_per_unit": None}, 422),
    ({"geo_lat": 48.1, "geo_lon": 11.5, "geo_bearing_deg": 0, "geo_metres_per_unit": 1}, 200),
    ({"geo_lat": None, "geo_lon": None, "geo_bearing_deg": None, "geo_metres_per_unit": None}, 200),
    ({"show_loop": 1}, 422),  # JSON's true, not 1
    ({"anchors": [{"key": "A1", "x": 101, "y": 1}]}, 409),  # outside the size the scene has
    ({"width": 50, "anchors": [{"key": "A1", "x": 51, "y": 1}]}, 422),  # outside the size it gives
    ({"anchors": [{"key": "A1", "x": 1}]}, 422),  # a change of anchors gives each whole
])
def test_scene_changes_the_document_calls_valid_are_taken(client, session, body, status):
    _, owner = make_user(session, "scene_admin")
    scene = make_scene(client, owner)
    answer = client.patch(f"/api/scenes/{scene['id']}", json=body, headers=auth(owner))
    assert answer.status_code == status, answer.json


def test_the_document_states_bounds_rules_and_headers(client):
    spec = client.get("/api/openapi.json").json
    scene_in, change = spec["components"]["schemas"]["SceneIn"], spec["components"]["schemas"]["SceneInUpdate"]
    assert scene_in["properties"]["width"]["exclusiveMinimum"] == 0 and "minimum" not in scene_in["properties"]["width"]
    assert len(scene_in["anyOf"]) == 2 and len(change["anyOf"]) == 3  # the geo-reference rule
    upload = spec["paths"]["/api/scenes/{scene_id}/frames"]["post"]
    assert upload["requestBody"]["required"] is True
    assert upload["responses"]["202"]["headers"]["Location"]["required"] is True
    assert upload["responses"]["503"]["headers"]["Retry-After"]["required"] is True
    assert "image/png" in upload["requestBody"]["content"]["multipart/form-data"]["encoding"]["file"]["contentType"]
    seat_map = spec["paths"]["/api/scenes/{scene_id}/seatmap"]["put"]["requestBody"]
    assert seat_map["required"] is True and set(seat_map["content"]) == {"text/csv", "application/json",
                                                                         "multipart/form-data"}


def test_openapi_lists_every_endpoint(app, client):
    spec = client.get("/api/openapi.json").json
    documented = {(path, method.upper()) for path, ops in spec["paths"].items() for method in ops}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/") or rule.rule.startswith(("/api/docs", "/api/openapi")):
            continue
        path = rule.rule.replace("<int:", "{").replace("<string:", "{").replace("<", "{").replace(">", "}")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method) in documented, (path, method)


def test_health_reports_each_service(client):
    response = client.get("/api/health")
    assert response.status_code == 200
    assert set(response.json["checks"]) == {"database", "file_store", "redis"}
    assert all(check["ok"] for check in response.json["checks"].values())


def test_health_says_which_service_is_down(tmp_path, clean_db):
    from c3s.web import create_app

    app = create_app({"database_url": "postgresql://postgres@127.0.0.1:1/nothing",
                      "redis_url": "redis://127.0.0.1:1/0", "instance_path": tmp_path})
    response = app.test_client().get("/api/health")
    assert response.status_code == 503
    checks = response.json["checks"]
    assert not checks["database"]["ok"] and not checks["redis"]["ok"] and checks["file_store"]["ok"]
