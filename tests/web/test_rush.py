"""The join rush: guest + join in one request, keyed token hashes, the check-in on the fast path,
and pixel numbers handed out to concurrent joins without duplicates."""

from __future__ import annotations

import hashlib
import hmac
import threading

from sqlalchemy import func, select, text

from c3s.models import ApiToken, Pixel, User, UserPermission
from tests.helpers.factories import TOKEN_KEY, auth, make_scene, make_user


def _join(client, scene_id: int, **body):
    return client.post(f"/api/scenes/{scene_id}/guests", json=body)


def _counts(session) -> tuple[int, int, int, int]:
    session.expire_all()
    return tuple(session.scalar(select(func.count()).select_from(m)) for m in (User, UserPermission, ApiToken, Pixel))


def test_one_request_makes_a_guest_its_right_its_token_and_its_pixel(client, session):
    _, owner = make_user(session, "scene_admin")
    scene = make_scene(client, owner)
    joined = [_join(client, scene["id"], display_name=f"  phone {i} ") for i in range(3)]
    assert [r.status_code for r in joined] == [201] * 3
    body = joined[1].json
    assert [r.json["number"] for r in joined] == [0, 1, 2]
    assert body["kind"] == "device" and body["status"] == "joined" and body["scene_id"] == scene["id"]
    assert body["user"]["is_guest"] is True and body["user"]["display_name"] == "phone 1"
    assert body["calibration"]["method"] == "qr" and body["calibration"]["png_url"].endswith("/1/code.png")
    # The same rows as POST /api/guests + POST …/join, and the token works on the old routes.
    user = session.get(User, body["user"]["id"])
    assert user.is_guest and user.email is None
    rights = session.execute(text("SELECT p.name, up.scene_id FROM user_permissions up JOIN permissions p "
                                  "ON p.id = up.permission_id WHERE up.user_id = :u"), {"u": user.id}).all()
    assert rights == [("pixel", None)]
    stored = session.scalar(select(ApiToken.token_hash).where(ApiToken.user_id == user.id))
    assert stored == hmac.new(TOKEN_KEY, body["token"].encode(), hashlib.sha256).hexdigest()
    assert len(body["token"]) >= 43  # 256 random bits, URL-safe base64
    assert client.get("/api/users/me", headers=auth(body["token"])).json["id"] == user.id
    png = client.get(body["calibration"]["png_url"], headers=auth(body["token"]))
    assert png.status_code == 200
    again = client.post(f"/api/scenes/{scene['id']}/join", headers=auth(body["token"]))
    assert again.status_code == 409 and again.json["detail"]["number"] == 1
    # The old two-step join goes on counting from the same counter.
    guest = client.post("/api/guests", json={}).json["token"]
    assert client.post(f"/api/scenes/{scene['id']}/join", headers=auth(guest)).json["number"] == 3
    spec = client.get("/api/openapi.json").json
    assert "post" in spec["paths"]["/api/scenes/{scene_id}/guests"]
    assert "show" in str(spec["paths"]["/api/scenes/{scene_id}/me"]["get"]["parameters"])


def test_a_refused_join_writes_nothing(client, session):
    _, owner = make_user(session, "scene_admin")
    scene = make_scene(client, owner)
    before = _counts(session)
    missing = _join(client, 987654)
    assert missing.status_code == 404 and "does not exist" in missing.json["message"]
    assert _join(client, 2**63 + 5).status_code == 404
    assert _join(client, scene["id"], display_name="x" * 101).status_code == 422
    assert _join(client, scene["id"], display_name=7).status_code == 422
    assert _join(client, scene["id"], display_name="a\x00b").status_code == 422
    garbled = client.post(f"/api/scenes/{scene['id']}/guests", data=b"{not json", content_type="application/json")
    assert garbled.status_code == 400
    huge = client.post(f"/api/scenes/{scene['id']}/guests", data=b" " * 5000, content_type="application/json")
    assert huge.status_code == 413
    session.execute(text("UPDATE scenes SET status = 'ended' WHERE id = :s"), {"s": scene["id"]})
    session.commit()
    ended = _join(client, scene["id"])
    assert ended.status_code == 409 and "ended" in ended.json["message"]
    assert _counts(session) == before


def test_the_check_in_reads_the_phones_own_pixel_and_optionally_the_show(client, session):
    _, owner = make_user(session, "scene_admin", "moderator")
    scene = make_scene(client, owner)
    other = make_scene(client, owner, name="Stand B")
    phone = _join(client, scene["id"]).json
    url = f"/api/scenes/{scene['id']}/me"
    me = client.get(url, headers=auth(phone["token"]))
    assert me.status_code == 200 and me.headers["Cache-Control"] == "no-store"
    assert me.json == {"scene_id": scene["id"], "number": 0, "status": "joined", "excluded_reason": None,
                       "offset_ms": None, "calibration": phone["calibration"]}
    with_show = client.get(url + "?show=1", headers=auth(phone["token"])).json
    assert with_show["show"]["status"] == "calibrating" and "frames" not in with_show["show"]
    assert with_show["show"]["maps_version"] == client.get(f"/api/scenes/{scene['id']}/show").json["maps_version"]
    assert client.get(url).status_code == 401
    assert client.get(url).headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get(url, headers=auth("not-a-token")).status_code == 401
    assert client.get(url, headers=auth("x" * 500)).status_code == 401
    assert client.get(f"/api/scenes/{other['id']}/me", headers=auth(phone["token"])).status_code == 404
    assert client.get("/api/scenes/999999/me", headers=auth(phone["token"])).json["message"] == \
        "scene 999999 does not exist"
    excluded = client.post(f"/api/scenes/{scene['id']}/pixels/0/exclude", headers=auth(owner),
                           json={"reason": "laser pointer"})
    assert excluded.status_code == 200
    me = client.get(url, headers=auth(phone["token"])).json
    assert (me["status"], me["excluded_reason"]) == ("excluded", "laser pointer")
    assert client.head(url, headers=auth(phone["token"])).status_code == 200  # Flask's view
    assert client.delete("/api/tokens/current", headers=auth(phone["token"])).status_code == 204
    revoked = client.get(url, headers=auth(phone["token"]))
    assert revoked.status_code == 401 and "revoked" in revoked.json["message"]


def test_tokens_stored_as_plain_sha256_still_work_and_are_restored_keyed(client, session):
    user, _ = make_user(session, guest=True)
    legacy = "an-old-token-from-before-the-key-" + "0" * 20
    session.execute(text("INSERT INTO api_tokens (user_id, token_hash, kind, expires_at) "
                         "VALUES (:u, :h, 'device', now() + interval '1 day')"),
                    {"u": user.id, "h": hashlib.sha256(legacy.encode()).hexdigest()})
    session.commit()
    _, owner = make_user(session, "scene_admin")
    scene = make_scene(client, owner)
    assert client.post(f"/api/scenes/{scene['id']}/join", headers=auth(legacy)).status_code == 201
    session.expire_all()
    stored = session.scalars(select(ApiToken.token_hash).where(ApiToken.user_id == user.id)).all()
    assert hmac.new(TOKEN_KEY, legacy.encode(), hashlib.sha256).hexdigest() in stored
    assert client.get(f"/api/scenes/{scene['id']}/me", headers=auth(legacy)).json["number"] == 0


def test_concurrent_joins_get_distinct_numbers_without_errors(app, client, session):
    """Threads join through both paths at once on PostgreSQL: every number once, no errors."""
    _, owner = make_user(session, "scene_admin")
    scene = make_scene(client, owner)["id"]
    rush = app.extensions["c3s_rush"]
    numbers, errors, lock = [], [], threading.Lock()
    start = threading.Barrier(9)

    def rush_joins():
        start.wait()
        for _ in range(40):
            try:
                got = rush.join_as_guest(scene).number
            except Exception as error:  # noqa: BLE001 - collected and asserted below
                with lock:
                    errors.append(repr(error))
                continue
            with lock:
                numbers.append(got)

    def orm_joins():
        local = app.test_client()
        start.wait()
        for _ in range(10):
            token = local.post("/api/guests", json={}).json["token"]
            response = local.post(f"/api/scenes/{scene}/join", headers=auth(token))
            with lock:
                (numbers.append(response.json["number"]) if response.status_code == 201
                 else errors.append(response.json))

    threads = [threading.Thread(target=rush_joins) for _ in range(8)] + [threading.Thread(target=orm_joins)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(numbers) == list(range(8 * 40 + 10))
    session.expire_all()
    stored = session.scalars(select(Pixel.number).where(Pixel.scene_id == scene)).all()
    assert sorted(stored) == sorted(numbers)


def test_the_embedded_default_joins_by_the_orm_path(tmp_path):
    from c3s import accounts
    from c3s.db import init_db
    from c3s.web import create_app

    app = create_app({"instance_path": tmp_path / "instance", "testing": True, "token_key": None})
    init_db(app.extensions["c3s"].database.engine)
    client = app.test_client()
    db = app.extensions["c3s"].database.session()
    user, _ = make_user(db, "scene_admin")
    token, _ = accounts.issue_token(db, user, kind="session", ttl_s=600, key=app.extensions["c3s"].token_key)
    db.commit()
    scene = make_scene(client, token)
    joined = [_join(client, scene["id"]) for _ in range(2)]
    assert [r.status_code for r in joined] == [201, 201]
    assert [r.json["number"] for r in joined] == [0, 1]
    assert (tmp_path / "instance" / "token.key").stat().st_mode & 0o077 == 0
    me = client.get(f"/api/scenes/{scene['id']}/me?show=true", headers=auth(joined[1].json["token"])).json
    assert me["number"] == 1 and me["show"]["status"] == "calibrating"
    db.close()
    app.extensions["c3s"].database.engine.dispose()
