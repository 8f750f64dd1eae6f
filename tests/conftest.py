"""Shared fixtures: a fresh PostgreSQL database per test session (created and dropped here), the
real Redis, and a Flask app/client bound to them."""

from __future__ import annotations

import os
import uuid

import pytest
import redis
from sqlalchemy import create_engine, text

from c3s.db import driver_url, init_db, make_engine

ADMIN_URL = os.environ.get("C3S_TEST_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("C3S_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
KEPT_TABLES = {"permissions", "methods"}


def _admin_engine():
    return create_engine(driver_url(ADMIN_URL), isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
def pg_url():
    """URL of a database created for this test session and dropped after it."""
    name = f"c3s_test_{uuid.uuid4().hex[:10]}"
    admin = _admin_engine()
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    engine = make_engine(url)
    init_db(engine)
    engine.dispose()
    yield url
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def pg_engine(pg_url):
    engine = make_engine(pg_url)
    yield engine
    engine.dispose()


@pytest.fixture()
def clean_db(pg_engine):
    """Empties every table but the seeded ones before the test runs."""
    with pg_engine.begin() as connection:
        tables = connection.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        )).scalars().all()
        emptied = [t for t in tables if t not in KEPT_TABLES]
        if emptied:
            connection.execute(text(
                "TRUNCATE " + ", ".join(f'"{t}"' for t in emptied) + " RESTART IDENTITY CASCADE"
            ))
    return pg_engine


@pytest.fixture()
def redis_client():
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture()
def app(clean_db, pg_url, redis_client, tmp_path):
    """The API on the test database, the real Redis and a filesystem store in tmp_path."""
    from c3s.web import create_app

    app = create_app({
        "database_url": pg_url, "redis_url": REDIS_URL, "instance_path": tmp_path / "instance",
        "testing": True, "max_upload_bytes": 8 * 1024 * 1024, "max_image_pixels": 4_000_000,
    })
    yield app
    app.extensions["c3s"].database.engine.dispose()


@pytest.fixture()
def client(app):
    return app.test_client()


@pytest.fixture()
def session(app):
    with app.extensions["c3s"].database.session() as session:
        yield session
