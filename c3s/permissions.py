"""Who may do what. A right is held everywhere (no scene) or in one scene; `admin` holds every
right; a scene's owner administers, moderates and observes that scene.

`scene_admin` held everywhere means "may create scenes"; it administers only the scenes one owns
(or was granted `scene_admin` for), so one operator cannot edit another operator's show."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from c3s.errors import Forbidden, Invalid, NotFound
from c3s.models import PERMISSIONS, Permission, Scene, User, UserPermission

OWNER_RIGHTS = frozenset({"scene_admin", "moderator", "observer", "pixel"})
# A scene's staff: who may see where its pixels are.
STAFF_RIGHTS = ("scene_admin", "moderator", "observer")


def grants_of(session: Session, user: User) -> set[tuple[str, int | None]]:
    rows = session.execute(
        select(Permission.name, UserPermission.scene_id)
        .join(UserPermission, UserPermission.permission_id == Permission.id)
        .where(UserPermission.user_id == user.id)
    )
    return {(name, scene_id) for name, scene_id in rows}


def has_permission(session: Session, user: User, name: str, scene: Scene | None = None) -> bool:
    return _holds(grants_of(session, user), user, name, scene)


def _holds(grants: set[tuple[str, int | None]], user: User, name: str, scene: Scene | None) -> bool:
    if name not in PERMISSIONS:
        raise ValueError(f"unknown permission {name!r}")
    if ("admin", None) in grants:
        return True
    if scene is not None and scene.owner_id == user.id and name in OWNER_RIGHTS:
        return True
    if scene is None:
        return (name, None) in grants
    if (name, scene.id) in grants:
        return True
    return name != "scene_admin" and (name, None) in grants


def require(session: Session, user: User, name: str, scene: Scene | None = None) -> None:
    if not has_permission(session, user, name, scene):
        where = f" for scene {scene.id}" if scene is not None else ""
        raise Forbidden(f"you need the '{name}' permission{where}; ask an administrator to grant it")


def require_staff(session: Session, user: User, scene: Scene, *, to: str) -> None:
    """The user administers, moderates or observes the scene (one query), or Forbidden saying
    that only its staff may ``to`` ("list its pixels", ...)."""
    grants = grants_of(session, user)
    if not any(_holds(grants, user, right, scene) for right in STAFF_RIGHTS):
        raise Forbidden(f"only the staff of scene {scene.id} (administrators, moderators, observers) "
                        f"may {to}")


def _permission(session: Session, name: str) -> Permission:
    permission = session.scalar(select(Permission).where(Permission.name == name))
    if permission is None:
        raise Invalid(f"unknown permission {name!r}; known: {', '.join(PERMISSIONS)}")
    return permission


def grant(session: Session, *, granter: User, user: User, name: str, scene_id: int | None) -> bool:
    """Give `user` the right `name` (in one scene or everywhere). False when already held."""
    require(session, granter, "admin")
    return add_grant(session, user=user, name=name, scene_id=scene_id, granted_by=granter.id)


def add_grant(session: Session, *, user: User, name: str, scene_id: int | None,
              granted_by: int | None = None) -> bool:
    """Record a right without checking who grants it: for `grant` above and for the commands
    run on the server (`c3s create-admin`, `c3s grant`). False when already held."""
    permission = _permission(session, name)
    if scene_id is not None and session.get(Scene, scene_id) is None:
        raise NotFound(f"scene {scene_id} does not exist")
    exists = session.scalar(select(UserPermission.id).where(
        UserPermission.user_id == user.id, UserPermission.permission_id == permission.id,
        UserPermission.scene_id.is_(None) if scene_id is None else UserPermission.scene_id == scene_id,
    ))
    if exists is not None:
        return False
    session.add(UserPermission(user_id=user.id, permission_id=permission.id,
                               scene_id=scene_id, granted_by=granted_by))
    session.flush()
    return True


def revoke(session: Session, *, granter: User, user: User, name: str, scene_id: int | None) -> bool:
    """Take the right away; False when the user did not hold it."""
    require(session, granter, "admin")
    permission = _permission(session, name)
    result = session.execute(delete(UserPermission).where(
        UserPermission.user_id == user.id, UserPermission.permission_id == permission.id,
        UserPermission.scene_id.is_(None) if scene_id is None else UserPermission.scene_id == scene_id,
    ))
    return result.rowcount > 0
