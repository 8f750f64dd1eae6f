"""Camera-closed sync: the crowd's light-output offsets as the newest blink clip measured them."""

from __future__ import annotations

from apiflask import APIBlueprint

from c3s import scenes
from c3s.sync import scene_report, schedule_burst
from c3s.web.auth import current_user, require_staff, token_auth
from c3s.web.context import db_session
from c3s.web.paging import link_headers, next_url
from c3s.web.schemas import PageHeaders, SyncBurstIn, SyncBurstOut, SyncPageOut, SyncQuery

bp = APIBlueprint("sync", __name__, tag="Show")

@bp.get("/scenes/<int:scene_id>/sync")
@bp.auth_required(token_auth)
@bp.input(SyncQuery, location="query", arg_name="query")
@bp.output(SyncPageOut, headers=PageHeaders)
@bp.doc(responses={403: "not staff of this scene", 404: "no such scene"})
def sync_report(scene_id: int, query):
    """How far the crowd's light output lands from the server clock (the scene's staff).

    Every blink clip of the scene is a sync check: it times each decoded phone's light (display
    latency plus clock error), and each phone then plays that much earlier. The report is the
    newest check (median, p95, histogram, worst sections, every phone), the corrections phones
    play with now, and the recent checks, so a check filmed after a correction shows what is
    left. The check's phones come in pages of at most `limit` (`check.pixels`); follow `next`
    (or the `Link` header) for the rest."""
    session = db_session()
    scene = scenes.get_scene(session, scene_id)
    require_staff(scene, to="see its sync report")
    report, last = scene_report(session, scene, after=query["after"], limit=query["limit"])
    url = next_url("sync", last, query["limit"])
    return {**report, "next": url}, 200, link_headers(url)


@bp.post("/scenes/<int:scene_id>/sync/burst")
@bp.auth_required(token_auth)
@bp.input(SyncBurstIn, arg_name="body")
@bp.output(SyncBurstOut)
@bp.doc(responses={403: "needs scene_admin", 404: "no such scene", 409: "the show is not playing"})
def sync_burst(scene_id: int, body):
    """A sync check during the show (needs `scene_admin`): from `start_at_ms` (Unix ms on the
    server clock; null: 15 s from now, so every phone has polled the show) for `duration_ms`,
    every phone blinks its pattern with its correction instead of the show. Film the crowd then
    and upload the clip with `start_ms`: its job reports what is left and refines the
    corrections. Phones see the burst in `GET .../show` (`sync_burst`)."""
    session = db_session()
    scene = scenes.get_scene(session, scene_id)
    burst = schedule_burst(session, current_user(), scene, start_at_ms=body["start_at_ms"],
                           duration_ms=body["duration_ms"])
    session.commit()
    return burst
