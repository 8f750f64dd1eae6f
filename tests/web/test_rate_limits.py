"""Rate limits on the real Redis: wrong passwords per account, login attempts, guests and joins
per address (a setting, generous by default), uploads per user; each a 429 with Retry-After."""

from __future__ import annotations

import pytest

from c3s.config import Config
from tests.helpers.factories import auth, make_scene, make_user, multipart

PASSWORD = "correct horse battery"


def _login(client, email, password, address="203.0.113.7"):
    return client.post("/api/tokens", json={"email": email, "password": password},
                       environ_base={"REMOTE_ADDR": address})


def _assert_429(answer, *words):
    assert answer.status_code == 429, answer.get_data()
    retry_after = int(answer.headers["Retry-After"])
    assert 1 <= retry_after <= 60 and answer.json["detail"]["retry_after_s"] == retry_after
    for word in words:
        assert word in answer.json["message"]


def test_ten_wrong_passwords_a_minute_then_429_even_for_the_right_one(client, session):
    user, _ = make_user(session)
    # From ten addresses, so only the account's limit applies.
    for guess in range(10):
        assert _login(client, user.email, f"wrong guess {guess}", f"198.51.100.{guess}").status_code == 401
    refused = _login(client, user.email, PASSWORD, "198.51.100.200")
    _assert_429(refused, "wrong passwords for this account", "10 per 60 s")
    other, _ = make_user(session)  # another account is not affected
    assert _login(client, other.email, PASSWORD).status_code == 201


def test_a_right_password_clears_the_wrong_ones(client, session):
    user, _ = make_user(session)
    for guess in range(9):
        assert _login(client, user.email, f"wrong guess {guess}").status_code == 401
    assert _login(client, user.email, PASSWORD).status_code == 201
    for guess in range(9):
        assert _login(client, user.email, f"wrong again {guess}").status_code == 401


def test_login_attempts_per_address(app, client):
    app.extensions["c3s"].config = _with(app, rate_logins_per_address=5)
    for n in range(5):
        assert _login(client, f"nobody{n}@example.org", "whatever it is", "192.0.2.9").status_code == 401
    _assert_429(_login(client, "nobody9@example.org", "whatever it is", "192.0.2.9"), "from your address")
    assert _login(client, "nobody9@example.org", "whatever it is", "192.0.2.10").status_code == 401


def _with(app, **changes) -> Config:
    return app.extensions["c3s"].config.with_overrides(changes)


def test_guests_and_joins_per_address_follow_their_setting(app, client, session):
    app.extensions["c3s"].config = _with(app, rate_guests_per_address=3, rate_joins_per_address=2)
    here = {"REMOTE_ADDR": "192.0.2.44"}
    tokens = [client.post("/api/guests", json={}, environ_base=here) for _ in range(3)]
    assert [t.status_code for t in tokens] == [201, 201, 201]
    _assert_429(client.post("/api/guests", json={}, environ_base=here), "guests from your address")
    assert client.post("/api/guests", json={}, environ_base={"REMOTE_ADDR": "192.0.2.45"}).status_code == 201
    _, owner = make_user(session, "scene_admin", guest=True)
    scene = make_scene(client, owner)["id"]
    joins = [client.post(f"/api/scenes/{scene}/join", headers=auth(t.json["token"]), environ_base=here)
             for t in tokens]
    assert [j.status_code for j in joins[:2]] == [201, 201]
    _assert_429(joins[2], "joins from your address")


def test_the_default_allows_a_stand_behind_one_address():
    config = Config()
    assert config.rate_guests_per_address >= 20_000 and config.rate_joins_per_address >= 20_000
    assert Config.from_env({"C3S_RATE_GUESTS_PER_ADDRESS": "500"}).rate_guests_per_address == 500


def test_uploads_per_user(app, client, session):
    app.extensions["c3s"].config = _with(app, rate_uploads_per_user=2)
    _, owner = make_user(session, "scene_admin", guest=True)
    scene = make_scene(client, owner)["id"]
    answers = [client.post(f"/api/scenes/{scene}/frames", headers=auth(owner),
                           **multipart(file=(b"not an image", "x.png"))) for _ in range(3)]
    assert [a.status_code for a in answers[:2]] == [415, 415] or [a.status_code for a in answers[:2]] == [422, 422]
    _assert_429(answers[2], "uploads")


@pytest.mark.parametrize("route", ["/api/tokens", "/api/guests", "/api/users"])
def test_429_is_documented(client, route):
    spec = client.get("/api/openapi.json")
    assert spec.status_code == 200, spec.get_data()[:300]
    assert "429" in spec.json["paths"][route]["post"]["responses"]


def test_a_login_while_the_hash_slot_is_taken_is_shed_at_once(client, session):
    """One hash at a time per process: the next login gets 503 with Retry-After, before any work."""
    from c3s import accounts

    user, _ = make_user(session)
    with accounts._hashing():  # noqa: SLF001 - the slot a running login holds
        assert accounts.hashing_busy()
        shed = _login(client, user.email, PASSWORD)
    assert shed.status_code == 503 and shed.headers["Retry-After"]
    assert "too many passwords" in shed.json["message"]
    assert _login(client, user.email, PASSWORD).status_code == 201


def test_shed_logins_count_against_their_address(app, client, session):
    """A storm from one address that keeps finding the hash slot taken meets 429, not only 503."""
    from c3s import accounts

    app.extensions["c3s"].config = _with(app, rate_logins_per_address=4, rate_registrations_per_address=2)
    user, _ = make_user(session)
    with accounts._hashing():  # noqa: SLF001 - the slot a running login holds
        shed = [_login(client, user.email, PASSWORD, "192.0.2.60") for _ in range(5)]
        signups = [client.post("/api/users", json={"email": f"new{n}@example.org", "password": PASSWORD},
                               environ_base={"REMOTE_ADDR": "192.0.2.61"}) for n in range(3)]
    assert [a.status_code for a in shed] == [503] * 4 + [429], [a.status_code for a in shed]
    _assert_429(shed[4], "login attempts from your address")
    assert [a.status_code for a in signups] == [503, 503, 429]
    _assert_429(signups[2], "registrations from your address")
    # Another address is not held back, and the shed attempts cost the account nothing.
    assert _login(client, user.email, PASSWORD, "192.0.2.62").status_code == 201


def test_the_one_request_join_counts_guests_and_joins_per_address(app, client, session):
    app.extensions["c3s"].config = _with(app, rate_guests_per_address=2)
    _, owner = make_user(session, "scene_admin", guest=True)
    scene = make_scene(client, owner)["id"]
    here = {"REMOTE_ADDR": "192.0.2.77"}
    answers = [client.post(f"/api/scenes/{scene}/guests", json={}, environ_base=here) for _ in range(3)]
    assert [a.status_code for a in answers[:2]] == [201, 201]
    _assert_429(answers[2], "guests from your address")
    named = client.post(f"/api/scenes/{scene}/guests", json={"display_name": "a\x00b"},
                        environ_base={"REMOTE_ADDR": "192.0.2.78"})
    assert named.status_code == 422  # refused by the schema or by the control-character check
