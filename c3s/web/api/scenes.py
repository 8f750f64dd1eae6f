"""Methods, scenes, and the pixels in a scene (join, leave, list, exclude, calibration codes)."""

from __future__ import annotations

from apiflask import APIBlueprint
from flask import Response
from sqlalchemy import func, select

from c3s import frames, scenes
from c3s.models import Method, Pixel, Scene
from c3s.permissions import readable_scenes
from c3s.web.auth import current_user, require_read, require_staff, token_auth
from c3s.web.calibration import calibration
from c3s.web.context import db_session, read_db_session, services
from c3s.web.ratelimit import TOO_MANY, per_address
from c3s.web.schemas import (
    ExcludeIn,
    JoinOut,
    MethodOut,
    PixelOut,
    PixelPageOut,
    PixelPageQuery,
    SceneIn,
    SceneOut,
)

bp = APIBlueprint("scenes", __name__, tag="Scenes")


@bp.get("/methods")
@bp.output(MethodOut(many=True))
def list_methods():
    """The ways pixels can be located."""
    return read_db_session().scalars(select(Method).order_by(Method.id)).all()


@bp.get("/scenes")
@bp.auth_required(token_auth)
@bp.output(SceneOut(many=True))
def list_scenes():
    """The scenes you may read, newest first: an operator's own and those granted to them, a
    pixel's joined ones; every scene for an admin."""
    session = read_db_session()
    statement = select(Scene).order_by(Scene.id.desc())
    where = readable_scenes(session, current_user())
    if where is not None:
        statement = statement.where(where)
    return session.scalars(statement).all()


@bp.post("/scenes")
@bp.auth_required(token_auth)
@bp.input(SceneIn, arg_name="body")
@bp.output(SceneOut, status_code=201)
def create_scene(body):
    """Create a scene (needs `scene_admin`); you become its owner."""
    scene = scenes.create_scene(db_session(), current_user(), body)
    db_session().commit()
    return scene


@bp.get("/scenes/<int:scene_id>")
@bp.auth_required(token_auth)
@bp.output(SceneOut)
def get_scene(scene_id: int):
    """One scene (its staff, observers and pixels)."""
    session = read_db_session()
    scene = scenes.get_scene(session, scene_id)
    require_read(scene, "member", to="read it")
    return scene


@bp.patch("/scenes/<int:scene_id>")
@bp.auth_required(token_auth)
@bp.input(SceneIn(partial=True), arg_name="body")
@bp.output(SceneOut)
@bp.doc(responses={409: "pixels are located beyond the new size, or an anchor lies outside the scene's size"})
def update_scene(scene_id: int, body):
    """Change a scene (its owner, or `scene_admin` of it); `anchors` replaces all anchors."""
    scene = scenes.update_scene(db_session(), current_user(), scenes.get_scene(db_session(), scene_id), body)
    db_session().commit()
    return scene


@bp.delete("/scenes/<int:scene_id>")
@bp.auth_required(token_auth)
@bp.output({}, status_code=204)
def delete_scene(scene_id: int):
    """Delete a scene with its pixels, frames and jobs."""
    session = db_session()
    scene = scenes.get_scene(session, scene_id)
    file_ids = frames.scene_file_ids(session, scene)
    scenes.delete_scene(session, current_user(), scene)
    session.commit()
    frames.delete_files(services().store, file_ids)
    return ""


@bp.post("/scenes/<int:scene_id>/join")
@bp.auth_required(token_auth)
@bp.output(JoinOut, status_code=201)
@bp.doc(responses={409: "you are a pixel of the scene already (`detail.number`), or its show has ended",
                   429: TOO_MANY})
def join(scene_id: int):
    """Join as a pixel: returns your number and what your phone must display to be located."""
    per_address("joins", "rate_joins_per_address", "joins from your address")
    session = db_session()
    scene = scenes.get_scene(session, scene_id)
    pixel = scenes.join(session, current_user(), scene)
    session.commit()
    return _join_body(scene, pixel)


def _join_body(scene: Scene, pixel: Pixel) -> dict:
    return {"scene_id": scene.id, "number": pixel.number, "status": pixel.status,
            "excluded_reason": pixel.excluded_reason if pixel.status == "excluded" else None,
            "calibration": calibration(scene, pixel), "offset_ms": pixel.offset_ms}


# GET /scenes/<id>/me, the phone's check-in, lives in c3s/web/api/rush.py (on the fast path).


@bp.delete("/scenes/<int:scene_id>/join")
@bp.auth_required(token_auth)
@bp.output(PixelOut)
def leave(scene_id: int):
    """Leave the scene; joining again later gives back the same number."""
    session = db_session()
    pixel = scenes.leave(session, current_user(), scenes.get_scene(session, scene_id))
    session.commit()
    services().request_build(scene_id)  # a located pixel left: rebuild the maps now, not at the next poll
    return pixel


@bp.get("/scenes/<int:scene_id>/pixels")
@bp.auth_required(token_auth)
@bp.input(PixelPageQuery, location="query", arg_name="query")
@bp.output(PixelPageOut)
def list_pixels(scene_id: int, query):
    """A page of the scene's pixels in number order, optionally of one status."""
    session = read_db_session()
    scene = scenes.get_scene(session, scene_id)
    require_staff(scene, to="list its pixels")
    where = [Pixel.scene_id == scene.id]
    if query["status"]:
        where.append(Pixel.status == query["status"])
    total = session.scalar(select(func.count()).select_from(Pixel).where(*where))
    page, per_page = query["page"], query["per_page"]
    rows = session.scalars(select(Pixel).where(*where).order_by(Pixel.number)
                           .offset((page - 1) * per_page).limit(per_page)).all()
    return {"pixels": rows, "page": page, "per_page": per_page, "total": total}


@bp.get("/scenes/<int:scene_id>/pixels/<int:number>")
@bp.auth_required(token_auth)
@bp.output(PixelOut)
def get_pixel(scene_id: int, number: int):
    """One pixel (the pixel itself, or the scene's staff and observers)."""
    session = read_db_session()
    scene = scenes.get_scene(session, scene_id)
    pixel = scenes.pixel_by_number(session, scene, number)
    if pixel.user_id != current_user().id:
        require_staff(scene, to="read its pixels")
    return pixel


@bp.post("/scenes/<int:scene_id>/pixels/<int:number>/exclude")
@bp.auth_required(token_auth)
@bp.input(ExcludeIn, arg_name="body")
@bp.output(PixelOut)
def exclude(scene_id: int, number: int, body):
    """Exclude a pixel from the scene (needs `moderator` for this scene); it cannot rejoin."""
    session = db_session()
    pixel = scenes.exclude(session, current_user(), scenes.get_scene(session, scene_id), number,
                           body["reason"])
    session.commit()
    services().request_build(scene_id)  # the excluded pixel goes dark as soon as the maps are rebuilt
    return pixel


def _own_or_admin_pixel(scene_id: int, number: int) -> tuple[Scene, Pixel]:
    session = db_session()
    scene = scenes.get_scene(session, scene_id)
    pixel = scenes.pixel_by_number(session, scene, number)
    if pixel.user_id != current_user().id:
        require_staff(scene, to="read its pixels' codes")
    return scene, pixel


@bp.get("/scenes/<int:scene_id>/pixels/<int:number>/code.png")
@bp.auth_required(token_auth)
@bp.doc(responses={200: {"description": "the pixel's QR code as PNG",
                         "content": {"image/png": {}}}})
def qr_png(scene_id: int, number: int):
    """The pixel's calibration QR code as a PNG (quiet zone included)."""
    from c3s.vision.qrcode import pixel_payload, render_qr_png

    scene, pixel = _own_or_admin_pixel(scene_id, number)
    png = render_qr_png(pixel_payload(scene.id, pixel.number), module_px=12)
    return Response(png, mimetype="image/png", headers={"Cache-Control": "private, max-age=86400"})


@bp.get("/scenes/<int:scene_id>/pixels/<int:number>/code.svg")
@bp.auth_required(token_auth)
@bp.doc(responses={200: {"description": "the pixel's QR code as SVG",
                         "content": {"image/svg+xml": {}}}})
def qr_svg(scene_id: int, number: int):
    """The pixel's calibration QR code as SVG (quiet zone included)."""
    from c3s.vision.qrcode import pixel_payload, render_qr_svg

    scene, pixel = _own_or_admin_pixel(scene_id, number)
    svg = render_qr_svg(pixel_payload(scene.id, pixel.number))
    return Response(svg, mimetype="image/svg+xml", headers={"Cache-Control": "private, max-age=86400"})


@bp.get("/scenes/<int:scene_id>/pixels/<int:number>/pattern")
@bp.auth_required(token_auth)
@bp.doc(responses={200: {"description": "the pixel's blink pattern: `slot_ms`, `n_slots`, "
                                        "`colors` ('#rrggbb' per slot); during server time t the "
                                        "phone shows slot floor(t / slot_ms) mod n_slots"}})
def blink_pattern(scene_id: int, number: int):
    """The pixel's blink pattern as JSON, to play full screen on the server clock."""
    from c3s.vision.blink import pattern

    _own_or_admin_pixel(scene_id, number)
    played = pattern(number)
    colors = ["#" + "".join(f"{int(c):02x}" for c in rgb) for rgb in played.colors]
    return {"number": number, "slot_ms": float(played.slot_ms), "n_slots": len(colors),
            "period_ms": float(played.period_ms), "colors": colors}, 200, {
        "Cache-Control": "private, max-age=86400"}
