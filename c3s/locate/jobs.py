"""Locate jobs: an observer's upload is stored, queued, and run to `done` (with counts) or
`failed` (with the reason), never left half written."""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from c3s import job_failures
from c3s.errors import Conflict, Invalid, UnsupportedMedia
from c3s.frames import PendingFiles
from c3s.framestore import FileCorrupt, FileMissing, FrameStore
from c3s.locate.fusion import Sighting, commit_sightings
from c3s.locate.mapping import LocateFailed, PixelRef
from c3s.locate.seat import needs_snap, snap_round
from c3s.models import FrameJob, LocateJob, Pixel, Scene, User, utcnow
from c3s.permissions import require

UPLOAD_METHODS = ("qr", "blink")


@dataclass(frozen=True)
class JobContext:
    scene: Scene
    data: bytes
    content_type: str
    options: dict
    max_pixels: int


def _check_media(data: bytes, filename: str) -> None:
    """Refuse what is neither a photo nor a clip before it is stored and queued."""
    from c3s.vision.media import sniff_media_type

    if sniff_media_type(data) is None:
        raise UnsupportedMedia(
            f"{filename or 'the upload'} is not a photo or a video: upload a JPEG, PNG, WebP photo "
            "or an MP4, MOV, WebM clip of the crowd (a seat map goes on the operator's dashboard)")


def create_job(session: Session, pending: PendingFiles, observer: User, scene: Scene, *, data: bytes,
               filename: str, content_type: str, method: str | None, options: dict | None = None) -> LocateJob:
    """Store an observer's photo or clip and queue its job (the caller commits, then enqueues)."""
    require(session, observer, "observer", scene)
    if method is None and scene.method.code not in UPLOAD_METHODS:  # the scene's method: its state
        raise Conflict(f"scene {scene.id} locates pixels by {scene.method.code}; uploads locate them by "
                       f"{' or '.join(UPLOAD_METHODS)}: name the method")
    method = method or scene.method.code
    if method not in UPLOAD_METHODS:
        raise Invalid(f"uploads locate pixels by {' or '.join(UPLOAD_METHODS)}, not {method!r}")
    if not data:
        raise Invalid("the uploaded file is empty")
    _check_media(data, filename)
    file_id = pending.put(data, filename=filename or "upload", content_type=content_type or "application/octet-stream",
                          metadata={"scene_id": scene.id, "kind": "calibration", **(options or {})})
    job = LocateJob(scene_id=scene.id, observer_id=observer.id, method=method, file_id=file_id,
                    filename=filename or "", content_type=content_type or "", stats={"options": options or {}})
    session.add(job)
    session.flush()
    return job


def _pixels(session: Session, scene: Scene) -> dict[int, PixelRef]:
    rows = session.execute(select(Pixel.id, Pixel.number, Pixel.status, Pixel.x, Pixel.y, Pixel.confidence)
                           .where(Pixel.scene_id == scene.id))
    return {row.number: PixelRef(*row) for row in rows}


def _locate_qr(session: Session, ctx: JobContext) -> tuple[list[Sighting], dict]:
    from c3s.locate.qr import qr_sightings
    from c3s.vision.qr import load_photo

    try:
        image = load_photo(ctx.data, max_pixels=ctx.max_pixels)
    except ValueError as error:
        raise LocateFailed(str(error)) from None
    anchors = {a.key: (a.x, a.y) for a in ctx.scene.anchors}
    return qr_sightings(ctx.scene.id, (ctx.scene.width, ctx.scene.height), image, anchors,
                        _pixels(session, ctx.scene))


def _locate_blink(session: Session, ctx: JobContext) -> tuple[list[Sighting], dict]:
    from c3s.locate.blink import blink_sightings

    anchors = {a.key: (a.x, a.y) for a in ctx.scene.anchors}
    return blink_sightings(ctx.scene, ctx.data, ctx.content_type, ctx.options, anchors,
                           _pixels(session, ctx.scene))


def _locate_sound(session: Session, ctx: JobContext) -> tuple[list[Sighting], dict]:
    from c3s.locate.sound import sound_sightings

    return sound_sightings(session, ctx.scene, ctx.data, ctx.options)


LOCATORS: dict[str, Callable[[Session, JobContext], tuple[list[Sighting], dict]]] = {
    "qr": _locate_qr,
    "blink": _locate_blink,
    # A pixel's own microphone clip (queued by c3s.locate.sound.create_sound_job, not an
    # observer upload, so it is not among UPLOAD_METHODS).
    "sound": _locate_sound,
}


def start(session: Session, job_id: int, *, redelivered: bool = False) -> LocateJob | None:
    """Mark the job running (one more attempt); None when there is nothing to do. `redelivered`:
    the broker gave this message back (job_failures.lost_on_redelivery)."""
    job = session.scalar(select(LocateJob).where(LocateJob.id == job_id).with_for_update())
    if job is None or job.status in ("done", "failed"):
        return None
    if job_failures.lost_on_redelivery(job, redelivered, utcnow()):
        session.commit()
        return None
    job.status, job.started_at, job.attempts = "running", utcnow(), job.attempts + 1
    job.heartbeat_at = job.started_at
    session.commit()
    return job


def run_job(session: Session, store: FrameStore, job_id: int, *, max_pixels: int,
            request_build: Callable[[int], object],
            request_snap: Callable[[int], object] | None = None,
            heartbeat: Callable[[int], AbstractContextManager] | None = None,
            redelivered: bool = False) -> LocateJob | None:
    """Run one job to `done` or `failed`; ``request_build(scene_id)`` is called once it is
    committed (the layout may have changed). Transient errors (database, store, broker)
    propagate so the task is retried; the job stays `running` until a later attempt finishes it.
    A camera job in a seated scene then asks ``request_snap`` (scene id) for the round's seat
    snapping; without one it snaps the scene itself, right away. ``heartbeat(job_id)``, when
    given, keeps the job's heartbeat while it runs; `redelivered`, see `start`."""
    job = start(session, job_id, redelivered=redelivered)
    if job is None:
        return session.get(LocateJob, job_id)
    with heartbeat(job.id) if heartbeat is not None else nullcontext():
        return _run_started(session, store, job, max_pixels=max_pixels, request_build=request_build,
                            request_snap=request_snap)


def _run_started(session: Session, store: FrameStore, job: LocateJob, *, max_pixels: int,
                 request_build: Callable[[int], object],
                 request_snap: Callable[[int], object] | None) -> LocateJob:
    scene = session.get(Scene, job.scene_id)
    try:
        data = store.get(job.file_id)
    except (FileMissing, FileCorrupt) as error:
        return _fail(session, job, f"the uploaded file cannot be read back: {error}")
    ctx = JobContext(scene=scene, data=data, content_type=job.content_type,
                     options=dict(job.stats.get("options", {})), max_pixels=max_pixels)
    try:
        sightings, stats = LOCATORS[job.method](session, ctx)
    except LocateFailed as error:
        return _fail(session, job, str(error))
    result = commit_sightings(session, job, scene, sightings)
    snap = needs_snap(session, scene, job.method)
    if snap:
        stats = {**stats, "snap": "queued"}
    job.stats = {**job.stats, **stats, "observations": result.recorded,
                 "rejected_outside_scene": result.outside_scene, "pixels_located": result.located,
                 "pixels_moved": result.moved}
    job.status, job.finished_at = "done", utcnow()
    session.commit()
    if snap:
        if request_snap is not None:
            request_snap(scene.id)
        else:
            snap_round(session, scene)
            session.commit()
    request_build(scene.id)  # the layout may have changed: rebuild the show's maps (coalesced)
    return job


# An absolute path (a decoder's temporary file, a module): a reason names no server path.
_SERVER_PATH = re.compile(r"(?<![\w.:/])/(?:[\w.+~-]+/)+[\w.+~-]*")


def public_reason(reason: str) -> str:
    """The reason with every absolute server path replaced by "the uploaded file"."""
    return _SERVER_PATH.sub("the uploaded file", reason)


def _fail(session: Session, job: LocateJob, reason: str) -> LocateJob:
    return job_failures.fail(session, LocateJob, job.id, public_reason(reason))


def fail_unexpectedly(session: Session, job_id: int, error: Exception) -> None:
    job = job_failures.unfinished(session, LocateJob, job_id)
    if job is not None:
        _fail(session, job, job_failures.unexpected_reason(error, "locating"))


@dataclass(frozen=True)
class SweepResult:
    resent: list[int]  # queued, but their message was lost: sent again (nothing ran)
    requeued: list[int]  # their worker was lost for the first time: queued to run once more
    failed: list[int]  # their worker was lost again: failed with the reason


def sweep_stale_jobs(session: Session, send: Callable[[int], None], *, queued_after_s: float,
                     running_after_s: float, now=None,
                     model: type[LocateJob] | type[FrameJob] = LocateJob) -> SweepResult:
    """Send again jobs whose message was lost (queued for `queued_after_s`: a broker restarted;
    not counted), and handle jobs whose worker was lost (running, heartbeat older than
    `running_after_s`): each loss is counted in `worker_losses` (job_failures.worker_lost), the
    first queues the job to run once more, the second fails it with a reason. A task retrying a
    transient error holds the heartbeat ahead over the retry's delay (c3s/tasks/heartbeat.py
    hold), so a retry is no loss. Sending a job twice is harmless: running a job is idempotent.
    `model` is the job table: locate jobs, or frame jobs (the same columns)."""
    from datetime import timedelta

    now = now or utcnow()
    silent_since = now - timedelta(seconds=running_after_s)
    stale = session.scalars(select(model).where(
        ((model.status == "queued") & (model.created_at <= now - timedelta(seconds=queued_after_s)))
        | ((model.status == "running")
           & (func.coalesce(model.heartbeat_at, model.started_at) <= silent_since))
    ).with_for_update(skip_locked=True).execution_options(populate_existing=True)).all()
    resent, requeued, failed = [], [], []
    for job in stale:
        if job.status == "queued":
            resent.append(job.id)
            continue
        if job_failures.worker_lost(job, now):
            failed.append(job.id)
        else:
            job.status = "queued"
            requeued.append(job.id)
    session.commit()
    for job_id in resent + requeued:
        send(job_id)
    return SweepResult(resent=resent, requeued=requeued, failed=failed)
