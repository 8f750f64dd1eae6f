"""Who counts as a scene's staff for reading: its administrators, moderators and observers."""

from __future__ import annotations

from c3s import scenes
from c3s.errors import Forbidden
from c3s.models import Scene
from c3s.permissions import has_permission
from c3s.web.auth import current_user
from c3s.web.context import read_db_session

STAFF_RIGHTS = ("scene_admin", "moderator", "observer")


def scene_for_staff(scene_id: int, what: str) -> Scene:
    """The scene, when the current user is on its staff; else 403 saying who may do `what`."""
    session = read_db_session()
    scene = scenes.get_scene(session, scene_id)
    if not any(has_permission(session, current_user(), right, scene) for right in STAFF_RIGHTS):
        raise Forbidden(f"only the staff and observers of scene {scene.id} may {what}")
    return scene
