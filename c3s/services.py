"""The services every part above the domain shares: the database, the file store, Redis, the
show cache and the task sender. One instance per app, created lazily so importing and building
the app never connects. Tasks and web views both read it from here (as superset keeps its
extensions in one neutral module), so neither imports the other for it; domain code is handed
what it needs (a ``send`` callable, a ``request_build``) instead of reaching up for it."""

from __future__ import annotations

from collections.abc import Callable

from flask import current_app

from c3s.config import Config
from c3s.db import Database
from c3s.framestore import FrameStore, open_store
from c3s.limits import Limiter
from c3s.show import ShowCache, cache_for, request_build

Send = Callable[..., None]


def _no_sender(task_name: str, *_args) -> None:
    raise RuntimeError(f"no task queue is bound to these services; cannot send {task_name}")


class Services:
    """What one app instance talks to. ``send(task_name, *args)`` queues a task; the task layer
    binds it (:func:`c3s.tasks.celery_init_app`)."""

    def __init__(self, config: Config):
        self.config = config
        self.database = Database()
        self.database.configure(config)
        self.send: Send = _no_sender
        self._store: FrameStore | None = None
        self._redis = None
        self.limiter = Limiter(lambda: self.redis)
        self._token_key: bytes | None = None

    @property
    def token_key(self) -> bytes:
        """The key of the API tokens' keyed hash (read, or made, on first use)."""
        if self._token_key is None:
            self._token_key = self.config.token_key_bytes()
        return self._token_key

    @property
    def store(self) -> FrameStore:
        if self._store is None:
            self._store = open_store(
                mongo_url=self.config.mongo_url, directory=self.config.files_path,
                write_concern=self.config.mongo_write_concern,
            )
        return self._store

    @property
    def redis(self):
        """The Redis client, or None on the embedded default (no C3S_REDIS_URL)."""
        if self._redis is None and self.config.redis_url:
            import redis

            self._redis = redis.Redis.from_url(self.config.redis_url, socket_timeout=2)
        return self._redis

    @property
    def show_cache(self) -> ShowCache:
        return cache_for(self.redis, self.database.engine.url)

    def request_build(self, scene_id: int) -> bool:
        """Queue a build of the scene's colour maps (:func:`c3s.show.request_build`)."""
        return request_build(self.show_cache, scene_id, self.send)


def services() -> Services:
    """The current app's services (inside an app context: a request, a task)."""
    return current_app.extensions["c3s"]


def config() -> Config:
    return services().config
