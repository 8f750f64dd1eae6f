"""Per-process services (database, file store) and per-request sessions."""

from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy.orm import Session

from c3s.config import Config
from c3s.db import Database
from c3s.framestore import FrameStore, open_store


class Services:
    """What one app instance talks to, created lazily so importing and building the app
    never connects."""

    def __init__(self, config: Config):
        self.config = config
        self.database = Database()
        self.database.configure(config)
        self._store: FrameStore | None = None
        self._redis = None
        self._token_key: bytes | None = None

    @property
    def token_key(self) -> bytes:
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


def init_app(app: Flask) -> None:
    app.extensions["c3s"] = Services(app.config["C3S"])

    @app.teardown_appcontext
    def _close_sessions(_exc):
        for key in ("db_session", "read_db_session"):
            session = g.pop(key, None)
            if session is not None:
                session.rollback()
                session.close()


def services() -> Services:
    return current_app.extensions["c3s"]


def config() -> Config:
    return services().config


def db_session() -> Session:
    """The request's database session; rolled back and closed when the request ends, so a
    view that raises leaves nothing half written."""
    if "db_session" not in g:
        g.db_session = services().database.session()
    return g.db_session


def read_db_session() -> Session:
    """A session for read-only requests (scenes, pixels, tracks): served by a standby when one
    is configured and fresh enough, else by the primary. Never write through it."""
    if "read_db_session" not in g:
        g.read_db_session = services().database.read_session()
    return g.read_db_session
