"""The app's services (:mod:`c3s.services`) bound to it, and per-request sessions."""

from __future__ import annotations

from flask import Flask, g
from sqlalchemy.orm import Session

from c3s.services import Services, config, services

__all__ = ["Services", "config", "db_session", "init_app", "read_db_session", "services"]


def init_app(app: Flask) -> None:
    app.extensions["c3s"] = Services(app.config["C3S"])

    @app.teardown_appcontext
    def _close_sessions(_exc):
        for key in ("db_session", "read_db_session"):
            session = g.pop(key, None)
            if session is not None:
                session.rollback()
                session.close()


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
