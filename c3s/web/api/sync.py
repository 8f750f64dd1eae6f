"""Camera-closed sync: the crowd's light-output offsets as the newest blink clip measured them."""

from __future__ import annotations

from apiflask import APIBlueprint, Schema
from apiflask.fields import Dict, Float, Integer, List, Nested, String

from c3s import scenes
from c3s.errors import Forbidden
from c3s.permissions import has_permission
from c3s.sync import scene_report
from c3s.web.auth import current_user, token_auth
from c3s.web.context import db_session

bp = APIBlueprint("sync", __name__, tag="Show")

STAFF = ("scene_admin", "moderator", "observer")


class CheckSummaryOut(Schema):
    job_id = Integer()
    filmed_at = String(metadata={"description": "when the clip was uploaded (ISO 8601)"})
    phones = Integer(metadata={"description": "phones whose light the clip timed"})
    median_ms = Float(allow_none=True, metadata={"description": "the crowd's median offset (ms, positive = late)"})
    p95_abs_ms = Float(allow_none=True, metadata={"description": "95 % of phones land within this of the server clock"})
    spread_p95_ms = Float(allow_none=True, metadata={"description": "95 % of phones within this of the median"})


class CheckOut(CheckSummaryOut):
    max_abs_ms = Float(allow_none=True)
    histogram = Dict(metadata={"description": "`bin_ms`, `edges_ms` (one more than counts), `counts`"})
    worst_sections = List(Dict(), metadata={
        "description": "scene grid cells (`section`, `x0`..`y1`, `phones`, `median_ms`, `p95_abs_ms`), worst first"})
    pixels = Dict(metadata={"description": "per phone timed: `numbers`, `x`, `y` (scene units, as the clip saw "
                                           "them), `offset_ms` (measured) and `correction_ms` (played with then)"})


class CorrectionsOut(Schema):
    pixels = Integer(metadata={"description": "located pixels that play with a correction"})
    median_ms = Float(allow_none=True)
    p95_abs_ms = Float(allow_none=True)


class SyncOut(Schema):
    scene_id = Integer()
    width = Float()
    height = Float()
    check = Nested(CheckOut, allow_none=True, metadata={"description": "the newest sync check; null before any"})
    corrections = Nested(CorrectionsOut)
    history = List(Nested(CheckSummaryOut), metadata={"description": "recent checks, newest first"})


@bp.get("/scenes/<int:scene_id>/sync")
@bp.auth_required(token_auth)
@bp.output(SyncOut)
@bp.doc(responses={403: "not staff of this scene", 404: "no such scene"})
def sync_report(scene_id: int):
    """How far the crowd's light output lands from the server clock (the scene's staff).

    Every blink clip of the scene is a sync check: it times each decoded phone's light (display
    latency plus clock error), and each phone then plays that much earlier. The report is the
    newest check (median, p95, histogram, worst sections, every phone), the corrections phones
    play with now, and the recent checks, so a check filmed after a correction shows what is
    left."""
    session = db_session()
    scene = scenes.get_scene(session, scene_id)
    user = current_user()
    if not any(has_permission(session, user, right, scene) for right in STAFF):
        raise Forbidden(f"only the staff of scene {scene.id} may see its sync report")
    return scene_report(session, scene)
