"""Malformed requests get a clear JSON 4xx, never a 500; the OpenAPI document lists every endpoint;
health reports each service."""

from __future__ import annotations

import pytest

from tests.helpers.factories import auth, make_scene, make_user


@pytest.mark.parametrize(("body", "content_type"), [
    ("{not json", "application/json"),
    ('["a", "list"]', "application/json"),
    ('{"name": 5, "method": "qr", "width": "wide", "height": 1}', "application/json"),
    ('{"name": "x", "method": "telepathy", "width": 1, "height": 1}', "application/json"),
    ('{"name": "x", "method": "qr", "width": -1, "height": 1}', "application/json"),
    ('{"name": "x", "method": "qr", "width": NaN, "height": 1}', "application/json"),
])
def test_malformed_scene_bodies(client, session, body, content_type):
    _, owner = make_user(session, "scene_admin")
    response = client.post("/api/scenes", data=body, content_type=content_type, headers=auth(owner))
    assert 400 <= response.status_code < 500, response.data
    assert response.is_json and response.json["message"]


def test_unknown_ids_and_routes(client, session):
    _, owner = make_user(session, "scene_admin")
    scene = make_scene(client, owner)
    for url in ("/api/scenes/999", f"/api/scenes/{scene['id']}/pixels/7", f"/api/scenes/{scene['id']}/frames/5/image",
                "/api/users/999/permissions", "/api/nothing-here"):
        response = client.get(url, headers=auth(owner))
        assert response.status_code in (403, 404), url
        assert response.is_json and response.json["message"], url
    wrong_method = client.put("/api/scenes", headers=auth(owner))
    assert wrong_method.status_code == 405 and wrong_method.is_json


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
