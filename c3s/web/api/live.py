"""The operator's live count of the show: phones placed, holding their track for the current
start (the pixel page fetches it once its clock is synced), playing."""

from __future__ import annotations

from apiflask import APIBlueprint
from flask import current_app
from sqlalchemy import func, select

from c3s.models import Pixel
from c3s.show import moment_at, now_ms
from c3s.web.auth import staff_scene, token_auth
from c3s.web.context import read_db_session
from c3s.web.playback import reader_of
from c3s.web.playcount import tracks_fetched
from c3s.web.schemas import ShowPhonesOut

bp = APIBlueprint("live", __name__, tag="Show")


@bp.get("/scenes/<int:scene_id>/show/phones")
@bp.auth_required(token_auth)
@bp.output(ShowPhonesOut)
def show_phones(scene_id: int):
    """How many phones are ready for the show and playing it (the scene's staff)."""
    scene = staff_scene(scene_id, to="count its phones")
    located = read_db_session().scalar(select(func.count()).select_from(Pixel).where(
        Pixel.scene_id == scene.id, Pixel.status == "located"))
    reader = reader_of(current_app)
    state = reader.state(scene.id)
    moment = moment_at(reader.timeline(state), state.status, state.start_ms, state.loop, now_ms())
    fetched = tracks_fetched(current_app, scene.id, state.start_ms)
    return {"located": located, "tracks_fetched": fetched, "phase": moment.phase,
            "playing": fetched if moment.phase == "playing" else 0, "start_ms": state.start_ms}
