"""Real Celery worker processes for the tests, and apps wired to the same broker."""

from __future__ import annotations

import os

from tests.helpers.services import BROKER_KEY_PREFIX, BROKER_URL, REDIS_URL


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


def broker_app_for(pg_url, shared_instance, broker_url):
    from c3s.web import create_app

    return create_app({
        "database_url": pg_url, "redis_url": REDIS_URL, "broker_url": broker_url,
        "broker_key_prefix": BROKER_KEY_PREFIX, "instance_path": shared_instance, "testing": True, "max_image_pixels": 50_000_000,
    })
