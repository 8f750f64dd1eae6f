"""Who may do what. A right is held everywhere (no scene) or in one scene; `admin` holds every
right; a scene's owner administers, moderates and observes that scene.

`scene_admin` held everywhere means "may create scenes"; it administers only the scenes one owns
(or was granted `scene_admin` for), so one operator cannot edit another operator's show.

Reading follows three levels, from most to least trusted (see :data:`READ_LEVELS`):

- ``show``: the scene's owner, `scene_admin` of the scene, `moderator` of it or everywhere, and
  `admin`: everything about their scene, the frames (unplayed) and every pixel's track included.
- ``staff``: the above and `observer` of the scene or everywhere: what locating pixels needs
  (jobs, pixels and their codes, layout, seat map, speakers, seat conflicts, the chirp WAV).
- ``member``: the above and the scene's pixels (joined or located): the scene itself, its seat
  map and speakers; frames once the show plays them. A pixel also reads its own pixel, track,
  codes, pattern and recordings.

Anyone else who asks for an existing scene gets 403 naming the level it needs; 404 means only that
the thing does not exist (scene ids are public anyway: the show's timeline is)."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from c3s.errors import Forbidden, Invalid, NotFound
from c3s.models import PERMISSIONS, Permission, Pixel, Scene, User, UserPermission

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


READ_LEVELS = {
    "show": ("scene_admin", "moderator"),
    "staff": STAFF_RIGHTS,
    "member": STAFF_RIGHTS,
}
READERS = {
    "show": "the owner, administrators and moderators of scene {id}",
    "staff": "the staff of scene {id} (administrators, moderators, observers)",
    "member": "the staff and pixels of scene {id}",
}
MEMBER_STATUSES = ("joined", "located")


def _holds_any(grants: set[tuple[str, int | None]], user: User, scene: Scene, rights) -> bool:
    if ("admin", None) in grants or scene.owner_id == user.id:
        return True
    return any((right, scene.id) in grants or (right != "scene_admin" and (right, None) in grants)
               for right in rights)


def can_read(session: Session, user: User, scene: Scene, level: str) -> bool:
    """Whether `user` reads what `level` (show, staff, member) covers in `scene`."""
    if _holds_any(grants_of(session, user), user, scene, READ_LEVELS[level]):
        return True
    return level == "member" and session.scalar(select(Pixel.id).where(
        Pixel.scene_id == scene.id, Pixel.user_id == user.id, Pixel.status.in_(MEMBER_STATUSES))) is not None


def require_read(session: Session, user: User, scene: Scene, level: str, *, to: str) -> None:
    """Forbidden unless `user` reads at `level` in `scene`, saying who may ``to`` ("list its
    pixels", ...)."""
    if not can_read(session, user, scene, level):
        raise Forbidden(f"only {READERS[level].format(id=scene.id)} may {to}")


def readable_scenes(session: Session, user: User):
    """A WHERE clause for the scenes `user` reads at least as a member, or None for all of them
    (admins, and rights held everywhere that read every scene)."""
    grants = grants_of(session, user)
    if any((right, None) in grants for right in ("admin", "moderator", "observer")):
        return None
    granted = [scene_id for right, scene_id in grants if scene_id is not None]
    joined = select(Pixel.scene_id).where(Pixel.user_id == user.id, Pixel.status.in_(MEMBER_STATUSES))
    return (Scene.owner_id == user.id) | Scene.id.in_(granted) | Scene.id.in_(joined)


def require(session: Session, user: User, name: str, scene: Scene | None = None) -> None:
    if not has_permission(session, user, name, scene):
        where = f" for scene {scene.id}" if scene is not None else ""
        raise Forbidden(f"you need the '{name}' permission{where}; ask an administrator to grant it")


def require_staff(session: Session, user: User, scene: Scene, *, to: str) -> None:
    """The user administers, moderates or observes the scene (one query), or Forbidden saying
    that only its staff may ``to`` ("list its pixels", ...)."""
    require_read(session, user, scene, "staff", to=to)


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
