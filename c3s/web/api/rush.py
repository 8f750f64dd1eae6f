"""The join rush over HTTP: a phone becomes a guest and a pixel of the scene in one request, and
checks in with one (its pixel, and with ``show=1`` the show's timeline head as well). The
answers come from :mod:`c3s.web.rush`; the fast path serves the same ones in front of Flask.
``POST /api/guests`` followed by ``POST …/join`` keeps working."""

from __future__ import annotations

from apiflask import APIBlueprint
from flask import current_app, request

from c3s.web import rush
from c3s.web.playback import as_response
from c3s.web.schemas import GuestIn, GuestJoinOut, MeOut, MeQuery

bp = APIBlueprint("rush", __name__, tag="Scenes")


@bp.post("/scenes/<int:scene_id>/guests")
@bp.input(GuestIn, arg_name="body")
@bp.output(GuestJoinOut, status_code=201)
@bp.doc(responses={404: "no such scene", 409: "the show in the scene has ended",
                   503: "the database does not answer"})
def join_as_guest(scene_id: int, body):
    """Join as a new guest in one request: creates a guest user with the `pixel` right, its
    device token (shown once) and its pixel in the scene, as `POST /api/guests` and then
    `POST …/join` would. What a phone scanning a poster calls."""
    return as_response(rush.guest_join_reply(current_app, scene_id, body))


@bp.get("/scenes/<int:scene_id>/me")
@bp.input(MeQuery, location="query", arg_name="query")
@bp.output(MeOut)
@bp.doc(security="BearerAuth", responses={401: "no token, or an unknown, revoked or expired one",
                                          404: "no such scene, or you have not joined it"})
def my_pixel(scene_id: int, query):
    """Your pixel in this scene (after a reload the phone finds itself again), with
    `excluded_reason` once a moderator excluded it; with `show=true` also the show's timeline
    head, so a playing phone checks in with one request."""
    return as_response(rush.me_reply(current_app, scene_id, request.headers.get("Authorization"),
                                     request.args.get("show")))


def init_app(app) -> None:
    rush.init_app(app)
