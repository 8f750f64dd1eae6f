"""Printable posters of a scene for its staff and observers: the join poster and the
reference-anchor posters (`c3s/posters.py` draws them)."""

from __future__ import annotations

from apiflask import APIBlueprint
from flask import Response, url_for

from c3s import posters
from c3s.errors import Conflict, Invalid, NotFound
from c3s.web.auth import staff_scene, token_auth
from c3s.web.schemas import POSTER_TYPES, AnchorPosterQuery, JoinPosterQuery

bp = APIBlueprint("posters", __name__, tag="Posters")

_RESPONSES = {200: {"description": "the poster", "content": {t: {} for t in POSTER_TYPES.values()}},
              403: "not staff or an observer of the scene", 422: "a bad option"}
_ANCHOR_RESPONSES = {**_RESPONSES, 404: "no such scene, or the scene has no anchor `key`",
                     409: "nothing to print: the scene has no anchors yet, or more than one for an SVG"}


def _answer(pages: list[posters.Page], fmt: str, name: str) -> Response:
    body = posters.to_pdf(pages) if fmt == "pdf" else posters.to_svg(pages[0])
    return Response(body, mimetype=POSTER_TYPES[fmt], headers={
        "Content-Disposition": f'inline; filename="{name}.{fmt}"', "Cache-Control": "private, no-cache"})


@bp.get("/scenes/<int:scene_id>/posters/join")
@bp.auth_required(token_auth)
@bp.input(JoinPosterQuery, location="query", arg_name="query")
@bp.doc(responses=_RESPONSES)
def join_poster(scene_id: int, query):
    """The join poster (A4 or A3): the phone link as a QR code and a short instruction."""
    scene = staff_scene(scene_id, to="print its posters")
    size = query["size"] or "a4"
    link = url_for("pages.pixel_page", scene_id=scene.id, _external=True)
    page = posters.join_page(scene.id, scene.name, link, size=size)
    return _answer([page], query["format"], f"scene-{scene.id}-join-{size}")


@bp.get("/scenes/<int:scene_id>/posters/anchors")
@bp.auth_required(token_auth)
@bp.input(AnchorPosterQuery, location="query", arg_name="query")
@bp.doc(responses=_ANCHOR_RESPONSES)
def anchor_posters(scene_id: int, query):
    """One poster per reference anchor: its code, key and scene coordinates, and from how far a
    phone photo reads it. PDF holds every anchor (one page each); SVG one anchor (`key`)."""
    scene = staff_scene(scene_id, to="print its posters")
    anchors = [{"key": a.key, "x": a.x, "y": a.y} for a in scene.anchors]
    if query["key"] is not None:
        anchors = [a for a in anchors if a["key"] == query["key"].upper()]
        if not anchors:
            raise NotFound(f"scene {scene.id} has no anchor {query['key']!r}")
    # Refusals of what this scene holds (its anchors), not of the request: 409.
    if not anchors:
        raise Conflict("the scene has no reference anchors yet: add them (KEY x y) to the scene first")
    if query["format"] == "svg" and len(anchors) > 1:
        raise Conflict("an SVG holds one poster: name the anchor with key=, or ask for format=pdf")
    try:
        size = query["size"] or (posters.size_for_distance(query["distance_m"])
                                 if query["distance_m"] else "a4")
        pages = posters.anchor_pages(scene.id, scene.name, scene.units, anchors, size=size)
    except ValueError as error:
        raise Invalid(str(error)) from None
    return _answer(pages, query["format"], f"scene-{scene.id}-anchors-{size}")
