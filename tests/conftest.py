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
def session(clean_db):
    from sqlalchemy.orm import Session

    with Session(clean_db, expire_on_commit=False) as session:
        yield session


BROKER_URL = os.environ.get("C3S_TEST_BROKER_URL", "redis://127.0.0.1:6379/14")
# Each test run queues under its own prefix, so runs sharing the Redis never take each other's jobs.
BROKER_KEY_PREFIX = f"c3s-test-{uuid.uuid4().hex[:8]}:"


@pytest.fixture(scope="session")
def shared_instance(tmp_path_factory):
    """An instance folder (file store) shared by the test process and the worker process."""
    return tmp_path_factory.mktemp("c3s-instance")


def worker_env(pg_url: str, instance, broker_url: str = BROKER_URL) -> dict[str, str]:
    return {**os.environ, "C3S_DATABASE_URL": pg_url, "C3S_BROKER_URL": broker_url,
            "C3S_BROKER_KEY_PREFIX": BROKER_KEY_PREFIX,
            "C3S_REDIS_URL": REDIS_URL, "C3S_INSTANCE_PATH": str(instance),
            "C3S_MAX_IMAGE_PIXELS": "50000000"}


def start_worker(env: dict[str, str], log_path, *, concurrency: int = 1, args: tuple[str, ...] = ()):
    """A real `c3s worker` process (in its own session: its process group is the whole worker);
    returns once it reports ready."""
    import subprocess
    import sys
    import time
    from pathlib import Path

    c3s = Path(sys.executable).with_name("c3s")
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(c3s), "worker", "-c", str(concurrency), "-l", "info", *args, "--without-mingle",
             "--without-gossip"],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if b"ready." in Path(log_path).read_bytes():
            return process
        if process.poll() is not None:
            break
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"the worker did not start:\n{Path(log_path).read_text(errors='replace')[-3000:]}")


def stop_worker(process) -> None:
    import signal

    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except Exception:  # noqa: BLE001 - a worker that will not stop is killed
            process.kill()
            process.wait()


def clear_broker(broker) -> None:
    """Remove this run's queues (and nothing of other runs sharing the Redis)."""
    keys = list(broker.scan_iter(match=f"{BROKER_KEY_PREFIX}*"))
    if keys:
        broker.delete(*keys)


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


def broker_app_for(pg_url, shared_instance, broker_url):
    from c3s.web import create_app

    return create_app({
        "database_url": pg_url, "redis_url": REDIS_URL, "broker_url": broker_url,
        "broker_key_prefix": BROKER_KEY_PREFIX, "instance_path": shared_instance, "testing": True, "max_image_pixels": 50_000_000,
    })


@pytest.fixture()
def worker_app(celery_worker, clean_db, pg_url, redis_client, shared_instance):
    """The API wired to the same broker, database and file store as the running worker."""
    app = broker_app_for(pg_url, shared_instance, BROKER_URL)
    yield app
    app.extensions["c3s"].database.dispose()
