"""Shared fixtures: a fresh PostgreSQL database per test session (created and dropped here), the
real Redis, a Flask app/client bound to them, and a real Celery worker (helpers in
tests/helpers/)."""

from __future__ import annotations

import os
import uuid

import pytest
import redis
from sqlalchemy import create_engine, text

from c3s.db import driver_url, init_db, make_engine
from tests.helpers.services import ADMIN_URL, BROKER_URL, REDIS_URL
from tests.helpers.workers import (
    broker_app_for,
    clear_broker,
    start_worker,
    stop_worker,
    worker_env,
)

# Every app, server and worker a test starts hashes tokens with this key (test settings are code).
os.environ.setdefault("C3S_TOKEN_KEY", "c3s-test-token-key-not-a-secret")
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
def session(clean_db):
    from sqlalchemy.orm import Session

    with Session(clean_db, expire_on_commit=False) as session:
        yield session


@pytest.fixture(scope="session")
def shared_instance(tmp_path_factory):
    """An instance folder (file store) shared by the test process and the worker process."""
    return tmp_path_factory.mktemp("c3s-instance")


@pytest.fixture(scope="session")
def celery_worker(pg_url, shared_instance, tmp_path_factory):
    """A real Celery worker on the real Redis broker and the test database."""
    broker = redis.Redis.from_url(BROKER_URL)
    clear_broker(broker)
    process = start_worker(worker_env(pg_url, shared_instance),
                           tmp_path_factory.mktemp("worker") / "worker.log")
    yield process
    stop_worker(process)
    clear_broker(broker)
    broker.close()


@pytest.fixture()
def worker_app(celery_worker, clean_db, pg_url, redis_client, shared_instance):
    """The API wired to the same broker, database and file store as the running worker."""
    app = broker_app_for(pg_url, shared_instance, BROKER_URL)
    yield app
    app.extensions["c3s"].database.dispose()
