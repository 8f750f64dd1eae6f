"""Registration, login, tokens (expiry, revocation), guests and Argon2id rehashing."""

from __future__ import annotations

from datetime import timedelta

from argon2 import PasswordHasher
from sqlalchemy import select

from c3s import accounts
from c3s.models import ApiToken, User, utcnow
from tests.helpers.factories import auth


def register(client, email="ana@example.org", password="correct horse battery"):
    return client.post("/api/users", json={"email": email, "password": password, "display_name": "Ana"})


def login(client, email="ana@example.org", password="correct horse battery"):
    return client.post("/api/tokens", json={"email": email, "password": password})


def test_register_login_and_me(client):
    created = register(client)
    assert created.status_code == 202 and created.json["email"] == "ana@example.org"
    response = login(client, email="  ANA@example.org ")
    assert response.status_code == 201
    me = client.get("/api/users/me", headers=auth(response.json["token"]))
    assert me.status_code == 200 and me.json["email"] == "ana@example.org" and not me.json["is_guest"]


def test_password_is_stored_as_argon2id_and_token_only_as_hash(client, session):
    register(client)
    token = login(client).json["token"]
    user = session.scalar(select(User).where(User.email == "ana@example.org"))
    assert user.password_hash.startswith("$argon2id$")
    stored = session.scalars(select(ApiToken.token_hash)).all()
    assert token not in stored and len(stored) == 1 and len(stored[0]) == 64


def test_wrong_password_unknown_user_and_duplicates(client):
    register(client)
    assert login(client, password="wrong password!").status_code == 401
    assert login(client, email="nobody@example.org").status_code == 401
    # Registering a taken address answers as for a free one: nobody learns which have accounts.
    duplicate = register(client, email="Ana@Example.org", password="another password")
    fresh = register(client, email="new@example.org", password="another password")
    assert (duplicate.status_code, set(duplicate.json)) == (fresh.status_code, set(fresh.json)) == (
        202, {"email", "message"})
    assert duplicate.json["message"] == fresh.json["message"]
    assert login(client, password="another password").status_code == 401  # the account is unchanged
    assert login(client).status_code == 201
    short = register(client, email="b@example.org", password="short")
    assert short.status_code == 422 and "at least" in str(short.json["detail"])
    assert register(client, email="not-an-email").status_code == 422


def test_expired_and_revoked_tokens_are_refused(client, session):
    register(client)
    token = login(client).json["token"]
    assert client.delete("/api/tokens/current", headers=auth(token)).status_code == 204
    revoked = client.get("/api/users/me", headers=auth(token))
    assert revoked.status_code == 401 and "revoked" in revoked.json["message"]

    token = login(client).json["token"]
    row = session.scalars(select(ApiToken).where(ApiToken.revoked_at.is_(None))).one()
    row.created_at = utcnow() - timedelta(days=2)
    row.expires_at = utcnow() - timedelta(seconds=1)
    session.commit()
    expired = client.get("/api/users/me", headers=auth(token))
    assert expired.status_code == 401 and "expired" in expired.json["message"]
    assert client.get("/api/users/me", headers=auth("made-up")).status_code == 401
    assert client.get("/api/users/me").status_code == 401


def test_guest_gets_a_device_token_and_no_password(client, session):
    response = client.post("/api/guests", json={})
    assert response.status_code == 201 and response.json["kind"] == "device"
    assert response.json["user"]["is_guest"] and response.json["user"]["email"] is None
    me = client.get("/api/users/me", headers=auth(response.json["token"]))
    assert me.status_code == 200
    guest = session.get(User, me.json["id"])
    assert guest.password_hash is None


def test_login_rehashes_when_parameters_change(client, session):
    register(client)
    user = session.scalar(select(User).where(User.email == "ana@example.org"))
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    user.password_hash = weak.hash("correct horse battery")
    session.commit()
    old_hash = user.password_hash
    assert login(client).status_code == 201
    session.expire_all()
    new_hash = session.get(User, user.id).password_hash
    assert new_hash != old_hash and not accounts.password_hasher.check_needs_rehash(new_hash)
