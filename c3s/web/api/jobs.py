"""Calibration uploads: an observer's photo or clip becomes a locate job run by a worker."""

from __future__ import annotations

from apiflask import APIBlueprint
from sqlalchemy import select

from c3s import scenes
from c3s.errors import NotFound
from c3s.frames import pending_files
from c3s.keyset import keyset_page
from c3s.locate.jobs import create_job
from c3s.models import LocateJob
from c3s.permissions import require_staff
from c3s.tasks import queue_locate_job
from c3s.web.auth import current_user, token_auth
from c3s.web.context import db_session, services
from c3s.web.paging import link_headers, next_url
from c3s.web.ratelimit import TOO_MANY, per_user
from c3s.web.schemas import JobOut, JobQuery, JobUploadIn, PageHeaders

bp = APIBlueprint("jobs", __name__, tag="Calibration")


@bp.post("/scenes/<int:scene_id>/jobs")
@bp.auth_required(token_auth)
@bp.input(JobUploadIn, location="form_and_files", arg_name="form")
@bp.output(JobOut, status_code=202)
@bp.doc(responses={409: "no `method` given, and the scene's own method is not one uploads serve",
                   415: "neither a photo nor a clip the method reads", 429: TOO_MANY})
def upload(scene_id: int, form):
    """Upload a calibration photo (QR) or clip (blink); a worker locates the pixels in it."""
    per_user("uploads", current_user().id, "rate_uploads_per_user", "uploads from you")
    session = db_session()
    scene = scenes.get_scene(session, scene_id)
    upload = form["file"]
    options = {key: form[key] for key in ("fps", "start_ms", "readout_ms", "exposure_ms")
               if form.get(key) is not None}
    with pending_files(services().store) as pending:
        job = create_job(session, pending, current_user(), scene, data=upload.read(),
                         filename=upload.filename or "", content_type=upload.mimetype or "",
                         method=form.get("method"), options=options)
        session.commit()
    queue_locate_job(job.id)
    session.refresh(job)
    return job


def _job(scene_id: int, job_id: int) -> LocateJob:
    session = db_session()
    scene = scenes.get_scene(session, scene_id)
    require_staff(session, current_user(), scene, to="read its jobs")
    job = session.scalar(select(LocateJob).where(LocateJob.id == job_id, LocateJob.scene_id == scene.id))
    if job is None:
        raise NotFound(f"scene {scene_id} has no job {job_id}")
    return job


@bp.get("/scenes/<int:scene_id>/jobs/<int:job_id>")
@bp.auth_required(token_auth)
@bp.output(JobOut)
def get_job(scene_id: int, job_id: int):
    """A job's status and counts: codes decoded, pixels matched and located, anchors used,
    rejections with reasons."""
    return _job(scene_id, job_id)


@bp.get("/scenes/<int:scene_id>/jobs")
@bp.auth_required(token_auth)
@bp.input(JobQuery, location="query", arg_name="query")
@bp.output(JobOut(many=True), headers=PageHeaders, description='a page of the jobs; the next page\'s URL is in '
           'the `Link: <...>; rel="next"` header')
def list_jobs(scene_id: int, query):
    """The scene's jobs, newest first: camera uploads, and one per seat claim, GPS fix and
    recording, so a crowd's worth."""
    session = db_session()
    scene = scenes.get_scene(session, scene_id)
    require_staff(session, current_user(), scene, to="list its jobs")
    page = keyset_page(session, select(LocateJob).where(LocateJob.scene_id == scene.id), (LocateJob.id,),
                       after=query["after"], limit=query["limit"], descending=True,
                       key_of=lambda row: (row[0].id,))
    return [row[0] for row in page.rows], 200, link_headers(next_url("jobs", page.next_key, query["limit"]))
