"""Bearer-token authentication for the API."""

from __future__ import annotations

from apiflask import HTTPTokenAuth
from flask import g

from c3s import accounts, permissions, scenes
from c3s.models import ApiToken, Scene, User
from c3s.web.context import db_session, services

token_auth = HTTPTokenAuth(scheme="Bearer", description="An API token from POST /api/tokens or /api/guests")


@token_auth.verify_token
def _verify(token: str) -> User | None:
    if not token:
        return None
    user, row = accounts.authenticate(db_session(), token, key=services().token_key)
    g.api_token = row
    return user


@token_auth.error_processor
def _auth_error(error):
    return {"message": "log in first: send 'Authorization: Bearer <token>'", "detail": {}}, 401, {
        "WWW-Authenticate": 'Bearer realm="c3s"'}


def current_user() -> User:
    return token_auth.current_user


def current_token() -> ApiToken:
    return g.api_token


def require_staff(scene: Scene, *, to: str) -> None:
    """The current user is the scene's staff (:func:`c3s.permissions.require_staff`)."""
    permissions.require_staff(db_session(), current_user(), scene, to=to)


def require_read(scene: Scene, level: str, *, to: str) -> None:
    """The current user reads `scene` at `level` (:func:`c3s.permissions.require_read`)."""
    permissions.require_read(db_session(), current_user(), scene, level, to=to)
def staff_scene(scene_id: int, *, to: str) -> Scene:
    """The scene, when the current user is on its staff; else 404 or 403 saying who may ``to``."""
    scene = scenes.get_scene(db_session(), scene_id)
    require_staff(scene, to=to)
    return scene
