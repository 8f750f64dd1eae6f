"""`c3s create-admin` and `c3s grant`: the first run of a fresh install, on the test PostgreSQL
database and on the embedded SQLite default."""

from __future__ import annotations

import uuid

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, inspect, text

from c3s.cli import main
from c3s.db import driver_url
from tests.helpers.factories import auth, make_scene
from tests.helpers.services import ADMIN_URL

PASSWORD = "a long first password"


@pytest.fixture()
def run(pg_url, clean_db, monkeypatch):
    monkeypatch.setenv("C3S_DATABASE_URL", pg_url)

    def invoke(*args, env=None, input=None):
        return CliRunner().invoke(main, list(args), env=env or {}, input=input)

    return invoke


def _login(client, email, password=PASSWORD):
    answer = client.post("/api/tokens", json={"email": email, "password": password})
    assert answer.status_code == 201, answer.json
    return answer.json["token"]


def test_create_admin_from_the_environment_is_idempotent_and_can_create_scenes(run, client):
    first = run("create-admin", "--email", "Boss@Example.org", env={"C3S_ADMIN_PASSWORD": PASSWORD})
    assert first.exit_code == 0, first.output
    assert "created" in first.output
    again = run("create-admin", "--email", "boss@example.org",
                env={"C3S_ADMIN_PASSWORD": "another password entirely"})
    assert again.exit_code == 0 and "nothing changed" in again.output
    token = _login(client, "boss@example.org")  # the first password still works
    grants = client.get(f"/api/users/{client.get('/api/users/me', headers=auth(token)).json['id']}"
                        "/permissions", headers=auth(token)).json
    assert {g["permission"] for g in grants} == {"pixel", "admin"}
    make_scene(client, token)


def test_create_admin_prompts_for_the_password_and_refuses_a_short_one(run, client):
    prompted = run("create-admin", "--email", "ops@example.org", env={"C3S_ADMIN_PASSWORD": ""},
                   input=f"{PASSWORD}\n{PASSWORD}\n")
    assert prompted.exit_code == 0, prompted.output
    _login(client, "ops@example.org")
    short = run("create-admin", "--email", "new@example.org", env={"C3S_ADMIN_PASSWORD": "short"})
    assert short.exit_code == 1 and "at least 10 characters" in short.output
    bad = run("create-admin", "--email", "not-an-email", env={"C3S_ADMIN_PASSWORD": PASSWORD})
    assert bad.exit_code == 1 and "not an email address" in bad.output


def test_a_signed_up_user_becomes_operator_and_observer_by_grant(run, client):
    assert client.post("/api/users", json={"email": "op@example.org", "password": PASSWORD}).status_code == 202
    token = _login(client, "op@example.org")
    refused = client.post("/api/scenes", json={"name": "S", "method": "qr", "width": 1, "height": 1},
                          headers=auth(token))
    assert refused.status_code == 403 and "scene_admin" in refused.json["message"]
    granted = run("grant", "--email", "op@example.org", "--permission", "scene_admin")
    assert granted.exit_code == 0 and "now holds scene_admin everywhere" in granted.output
    scene = make_scene(client, token)
    assert "already held" in run("grant", "--email", "op@example.org", "--permission", "scene_admin").output

    assert client.post("/api/users", json={"email": "eye@example.org", "password": PASSWORD}).status_code == 202
    eye = _login(client, "eye@example.org")
    assert client.get(f"/api/scenes/{scene['id']}/pixels", headers=auth(eye)).status_code == 403
    scoped = run("grant", "--email", "eye@example.org", "--permission", "observer", "--scene", str(scene["id"]))
    assert scoped.exit_code == 0, scoped.output
    assert client.get(f"/api/scenes/{scene['id']}/pixels", headers=auth(eye)).status_code == 200

    unknown = run("grant", "--email", "nobody@example.org", "--permission", "observer")
    assert unknown.exit_code == 1 and "no account for nobody@example.org" in unknown.output
    missing = run("grant", "--email", "eye@example.org", "--permission", "observer", "--scene", "9999")
    assert missing.exit_code == 1 and "scene 9999 does not exist" in missing.output


def test_create_admin_on_the_embedded_default_makes_the_database(tmp_path, monkeypatch):
    monkeypatch.delenv("C3S_DATABASE_URL", raising=False)
    env = {"C3S_INSTANCE_PATH": str(tmp_path / "instance"), "C3S_ADMIN_PASSWORD": PASSWORD}
    result = CliRunner().invoke(main, ["create-admin", "--email", "a@example.org"], env=env)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "instance").is_dir()


@pytest.fixture()
def empty_pg_url():
    """A PostgreSQL database as `createdb` leaves it: no tables."""
    name = f"c3s_fresh_{uuid.uuid4().hex[:10]}"
    admin = create_engine(driver_url(ADMIN_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_create_admin_on_a_fresh_postgresql_database_gives_it_the_schema(empty_pg_url):
    env = {"C3S_DATABASE_URL": empty_pg_url, "C3S_ADMIN_PASSWORD": PASSWORD}
    created = CliRunner().invoke(main, ["create-admin", "--email", "first@example.org"], env=env)
    assert created.exit_code == 0, created.output
    assert "created" in created.output
    engine = create_engine(driver_url(empty_pg_url))
    try:
        assert {"users", "scenes", "permissions"} <= set(inspect(engine).get_table_names())
        with engine.connect() as connection:
            assert connection.execute(text("SELECT email FROM users")).scalars().all() == ["first@example.org"]
    finally:
        engine.dispose()
    granted = CliRunner().invoke(main, ["grant", "--email", "first@example.org", "--permission", "observer"], env=env)
    assert granted.exit_code == 0, granted.output
