"""Each role can do exactly what it should, in exactly the scenes it should."""

from __future__ import annotations

from tests.helpers.factories import auth, make_scene, make_user


def _join(client, scene_id):
    guest = client.post("/api/guests", json={}).json["token"]
    joined = client.post(f"/api/scenes/{scene_id}/join", headers=auth(guest))
    assert joined.status_code == 201
    return guest, joined.json["number"]


def test_only_scene_admins_create_scenes(client, session):
    _, plain = make_user(session)
    refused = client.post("/api/scenes", json={"name": "X", "method": "qr", "width": 1, "height": 1},
                          headers=auth(plain))
    assert refused.status_code == 403 and "scene_admin" in refused.json["message"]
    _, admin = make_user(session, "scene_admin")
    assert make_scene(client, admin)["method"] == "qr"


def test_owner_administers_own_scene_but_not_others(client, session):
    _, alice = make_user(session, "scene_admin")
    _, bob = make_user(session, "scene_admin")
    scene = make_scene(client, alice)
    renamed = client.patch(f"/api/scenes/{scene['id']}", json={"name": "North"}, headers=auth(alice))
    assert renamed.status_code == 200 and renamed.json["name"] == "North"
    assert client.patch(f"/api/scenes/{scene['id']}", json={"name": "Mine"}, headers=auth(bob)).status_code == 403
    assert client.delete(f"/api/scenes/{scene['id']}", headers=auth(bob)).status_code == 403
    assert client.delete(f"/api/scenes/{scene['id']}", headers=auth(alice)).status_code == 204
    assert client.get(f"/api/scenes/{scene['id']}", headers=auth(alice)).status_code == 404


def test_moderator_of_scene_a_cannot_exclude_in_scene_b(client, session):
    _, owner = make_user(session, "scene_admin")
    scene_a, scene_b = make_scene(client, owner), make_scene(client, owner, name="B")
    _, moderator = make_user(session, ("moderator", scene_a["id"]))
    _, number_a = _join(client, scene_a["id"])
    _, number_b = _join(client, scene_b["id"])
    refused = client.post(f"/api/scenes/{scene_b['id']}/pixels/{number_b}/exclude", json={},
                          headers=auth(moderator))
    assert refused.status_code == 403 and f"scene {scene_b['id']}" in refused.json["message"]
    done = client.post(f"/api/scenes/{scene_a['id']}/pixels/{number_a}/exclude",
                       json={"reason": "laser pointer"}, headers=auth(moderator))
    assert done.status_code == 200 and done.json["status"] == "excluded"


def test_observer_scope_decides_who_lists_pixels(client, session):
    _, owner = make_user(session, "scene_admin")
    scene_a, scene_b = make_scene(client, owner), make_scene(client, owner, name="B")
    _, observer = make_user(session, ("observer", scene_a["id"]))
    assert client.get(f"/api/scenes/{scene_a['id']}/pixels", headers=auth(observer)).status_code == 200
    assert client.get(f"/api/scenes/{scene_b['id']}/pixels", headers=auth(observer)).status_code == 403
    guest, _ = _join(client, scene_a["id"])
    assert client.get(f"/api/scenes/{scene_a['id']}/pixels", headers=auth(guest)).status_code == 403


def test_admin_grants_and_revokes_and_nobody_else_can(client, session):
    _, admin = make_user(session, "admin")
    target, target_token = make_user(session)
    _, plain = make_user(session)
    url = f"/api/users/{target.id}/permissions"
    assert client.post(url, json={"permission": "scene_admin"}, headers=auth(plain)).status_code == 403
    granted = client.post(url, json={"permission": "scene_admin"}, headers=auth(admin))
    assert granted.status_code == 200 and granted.json["changed"]
    again = client.post(url, json={"permission": "scene_admin"}, headers=auth(admin))
    assert again.status_code == 200 and not again.json["changed"]
    mine = client.get(url, headers=auth(target_token)).json
    assert {"permission": "scene_admin", "scene_id": None} in mine
    make_scene(client, target_token)
    assert client.delete(f"{url}/scene_admin", headers=auth(admin)).json["changed"]
    refused = client.post("/api/scenes", json={"name": "X", "method": "qr", "width": 1, "height": 1},
                          headers=auth(target_token))
    assert refused.status_code == 403
    assert client.post(url, json={"permission": "wizard"}, headers=auth(admin)).status_code == 422
    assert client.post(url, json={"permission": "observer", "scene_id": 999}, headers=auth(admin)).status_code == 404
    assert client.get(f"/api/users/{target.id}/permissions", headers=auth(plain)).status_code == 403
