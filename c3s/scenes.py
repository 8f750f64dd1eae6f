"""Scenes and the pixels in them: create and edit scenes, join and leave as a pixel, exclude a
pixel, and what each phone must display to be located."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from c3s.errors import Conflict, Forbidden, Invalid, NotFound
from c3s.models import Anchor, Method, Pixel, Scene, User, utcnow
from c3s.permissions import require
from c3s.show import bump_layout

EDITABLE_FIELDS = (
    "name", "width", "height", "units", "fit", "show_loop", "geo_lat", "geo_lon",
    "geo_bearing_deg", "geo_metres_per_unit", "max_gps_accuracy_m", "temperature_c",
    "temperature_max_c", "humidity_pct",
)


def get_scene(session: Session, scene_id: int, *, for_update: bool = False) -> Scene:
    if not 0 < scene_id < 2**63:  # no row can have it (and PostgreSQL would refuse the number)
        raise NotFound(f"scene {scene_id} does not exist")
    statement = select(Scene).where(Scene.id == scene_id)
    if for_update:
        # Lock the scene row only: the method is joined eagerly, and PostgreSQL cannot lock the
        # nullable side of an outer join.
        statement = statement.with_for_update(of=Scene)
    scene = session.scalar(statement)
    if scene is None:
        raise NotFound(f"scene {scene_id} does not exist")
    return scene


def method_by_code(session: Session, code: str) -> Method:
    method = session.scalar(select(Method).where(Method.code == code))
    if method is None:
        known = ", ".join(session.scalars(select(Method.code).order_by(Method.code)))
        raise Invalid(f"unknown location method {code!r}; choose one of {known}")
    return method


def _set_anchors(session: Session, scene: Scene, anchors: list[Mapping[str, Any]],
                 data: Mapping[str, Any]) -> None:
    """Replace the anchors. One outside the size the request gave is a bad request (422); one
    outside the size the scene already has is refused for the scene's state (409)."""
    keys = [a["key"] for a in anchors]
    if len(set(keys)) != len(keys):
        raise Invalid("anchor keys must be unique within a scene")
    for anchor in anchors:
        outside = [side for side, at, size in (("width", anchor["x"], scene.width), ("height", anchor["y"], scene.height))
                   if not 0 <= at <= size]
        if outside:
            error = Invalid if all(side in data for side in outside) else Conflict
            raise error(f"anchor {anchor['key']} at ({anchor['x']}, {anchor['y']}) lies outside the "
                        f"{scene.width} × {scene.height} scene")
    scene.anchors.clear()
    session.flush()
    scene.anchors.extend(Anchor(key=a["key"], x=a["x"], y=a["y"]) for a in anchors)


def _check_size_fits_pixels(session: Session, scene: Scene, width: float, height: float) -> None:
    extent = session.execute(
        select(func.max(Pixel.x), func.max(Pixel.y)).where(Pixel.scene_id == scene.id)
    ).one()
    if (extent[0] is not None and extent[0] > width) or (extent[1] is not None and extent[1] > height):
        raise Conflict(f"pixels are already located up to ({extent[0]:.2f}, {extent[1]:.2f}); "
                       f"the scene cannot shrink to {width} × {height}")


GEO_FIELDS = ("geo_lat", "geo_lon", "geo_bearing_deg", "geo_metres_per_unit")


def _check_geo(scene: Scene) -> None:
    given = [f for f in GEO_FIELDS if getattr(scene, f) is not None]
    if given and len(given) != len(GEO_FIELDS):
        missing = ", ".join(f for f in GEO_FIELDS if f not in given)
        raise Invalid(f"a geo-reference needs all of {', '.join(GEO_FIELDS)}; missing: {missing}")


def create_scene(session: Session, owner: User, data: Mapping[str, Any]) -> Scene:
    require(session, owner, "scene_admin")
    method = method_by_code(session, data["method"])
    scene = Scene(owner_id=owner.id, method_id=method.id, method=method,
                  **{k: data[k] for k in EDITABLE_FIELDS if k in data})
    _check_geo(scene)
    session.add(scene)
    session.flush()
    _set_anchors(session, scene, data.get("anchors", []), data)
    session.flush()
    return scene


def update_scene(session: Session, user: User, scene: Scene, data: Mapping[str, Any]) -> Scene:
    require(session, user, "scene_admin", scene)
    if "method" in data:
        method = method_by_code(session, data["method"])
        scene.method_id, scene.method = method.id, method
    width, height = data.get("width", scene.width), data.get("height", scene.height)
    if (width, height) != (scene.width, scene.height):
        _check_size_fits_pixels(session, scene, width, height)
    for key in EDITABLE_FIELDS:
        if key in data:
            setattr(scene, key, data[key])
    _check_geo(scene)
    if "anchors" in data:
        _set_anchors(session, scene, data["anchors"], data)
    session.flush()
    return scene


def delete_scene(session: Session, user: User, scene: Scene) -> None:
    require(session, user, "scene_admin", scene)
    session.delete(scene)
    session.flush()


def pixel_of(session: Session, scene: Scene, user: User) -> Pixel | None:
    return session.scalar(select(Pixel).where(Pixel.scene_id == scene.id, Pixel.user_id == user.id))


def pixel_by_number(session: Session, scene: Scene, number: int) -> Pixel:
    pixel = session.scalar(select(Pixel).where(Pixel.scene_id == scene.id, Pixel.number == number))
    if pixel is None:
        raise NotFound(f"scene {scene.id} has no pixel number {number}")
    return pixel


def join(session: Session, user: User, scene: Scene) -> Pixel:
    """Make `user` a pixel of `scene` with the scene's next number (a rejoin keeps its number)."""
    require(session, user, "pixel", scene)
    if scene.status == "ended":
        raise Conflict(f"the show in scene {scene.id} has ended")
    pixel = pixel_of(session, scene, user)
    if pixel is not None:
        if pixel.status == "excluded":
            raise Forbidden("you were excluded from this scene by a moderator")
        if pixel.status != "left":
            raise Conflict(f"you are already pixel {pixel.number} of this scene",
                           detail={"number": pixel.number})
        pixel.status = "joined"
        pixel.joined_at = utcnow()
        session.flush()
        return pixel
    # One atomic increment hands out numbers without scanning pixels or racing other joins.
    number = session.execute(
        update(Scene).where(Scene.id == scene.id)
        .values(next_pixel_number=Scene.next_pixel_number + 1)
        .returning(Scene.next_pixel_number)
    ).scalar_one() - 1
    pixel = Pixel(scene_id=scene.id, scene_width=scene.width, scene_height=scene.height,
                  user_id=user.id, number=number, status="joined")
    session.add(pixel)
    session.flush()
    return pixel


def leave(session: Session, user: User, scene: Scene) -> Pixel:
    pixel = pixel_of(session, scene, user)
    if pixel is None or pixel.status == "left":
        raise NotFound("you are not a pixel of this scene")
    if pixel.status == "excluded":
        raise Forbidden("you were excluded from this scene by a moderator")
    was_located = pixel.status == "located"
    pixel.status = "left"
    if was_located:
        bump_layout(session, scene.id)
    session.flush()
    return pixel


def exclude(session: Session, moderator: User, scene: Scene, number: int, reason: str) -> Pixel:
    require(session, moderator, "moderator", scene)
    pixel = pixel_by_number(session, scene, number)
    was_shown = pixel.status == "located"
    pixel.status = "excluded"
    pixel.excluded_reason = reason.strip() or "excluded by a moderator"
    if was_shown:
        bump_layout(session, scene.id)
    session.flush()
    return pixel
