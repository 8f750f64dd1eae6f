"""Frame videos decoded by the show worker. Decoding a long clip takes longer than a request may
(the API's workers are killed after 30 s), so a video upload is stored and answered with a
queued job; the worker decodes it, reporting progress on the job, and appends the frames in one
transaction with the job's `done`, or records why it failed. Images stay in the request: they
decode in milliseconds."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from c3s import job_failures
from c3s.errors import C3SError, NotFound
from c3s.frames import PendingFiles, add_frames, pending_files
from c3s.framestore import FileCorrupt, FileMissing, FrameStore
from c3s.models import FrameJob, Scene, User, utcnow
from c3s.permissions import require, require_read

# Decoding is this share of the work; writing the frames' PNGs is the rest.
DECODE_SHARE = 0.9


def is_video(data: bytes, content_type: str | None) -> bool:
    """True when the upload is a video (by its bytes, or declared so when they say nothing)."""
    from c3s.vision.media import sniff_media_type

    sniffed = sniff_media_type(data)
    if sniffed is not None:
        return sniffed[0] == "video"
    return (content_type or "").lower().startswith("video/")


def create_frame_job(session: Session, pending: PendingFiles, user: User, scene: Scene, *,
                     data: bytes, content_type: str, filename: str,
                     duration_ms: int | None) -> FrameJob:
    """Store the video and queue its decoding (needs `scene_admin`)."""
    require(session, user, "scene_admin", scene)
    file_id = pending.put(data, filename=filename or "video", content_type=content_type or None,
                          metadata={"scene_id": scene.id, "kind": "frame-video"})
    job = FrameJob(scene_id=scene.id, user_id=user.id, file_id=file_id, filename=filename,
                   content_type=content_type, duration_ms=duration_ms)
    session.add(job)
    session.flush()
    return job


def get_frame_job(session: Session, user: User, scene: Scene, job_id: int) -> FrameJob:
    # A frame video's job is read like the frames it makes: by those who see unplayed frames.
    require_read(session, user, scene, "show", to="follow the decoding of its frame videos")
    job = session.scalar(select(FrameJob).where(FrameJob.id == job_id, FrameJob.scene_id == scene.id))
    if job is None:
        raise NotFound(f"scene {scene.id} has no frame job {job_id}")
    return job


def _start(session: Session, store: FrameStore, job_id: int, redelivered: bool) -> FrameJob | None:
    job = session.scalar(select(FrameJob).where(FrameJob.id == job_id).with_for_update())
    if job is None or job.status in ("done", "failed"):
        return None
    if job_failures.lost_on_redelivery(job, redelivered, utcnow()):
        session.commit()
        store.delete(job.file_id)  # failed: the video is of no use
        return None
    job.status, job.started_at, job.attempts, job.progress = "running", utcnow(), job.attempts + 1, 0.0
    job.heartbeat_at = job.started_at
    session.commit()
    return job


class _Superseded(Exception):
    """Another run of the job took it over (re-queued by the sweep) or finished it."""


def run_frame_job(session: Session, store: FrameStore, job_id: int, *, max_pixels: int,
                  report: Callable[[int, float], None], request_build: Callable[[int], object],
                  heartbeat: Callable[[int], AbstractContextManager] | None = None,
                  redelivered: bool = False) -> FrameJob | None:
    """Decode the job's video and append its frames; `done` with the frame ids, or `failed`
    with the reason. ``report(job_id, fraction)`` records progress out of this transaction;
    ``heartbeat(job_id)``, when given, keeps the job's heartbeat while it runs; `redelivered`:
    the broker gave this message back (job_failures.lost_on_redelivery). Idempotent: a
    finished job is left as it is, an interrupted one wrote nothing, and of two runs of one job
    (one re-queued while the other was still going) only the latest may commit frames."""
    job = _start(session, store, job_id, redelivered)
    if job is None:
        return session.get(FrameJob, job_id)
    with heartbeat(job.id) if heartbeat is not None else nullcontext():
        try:
            return _decode(session, store, job, max_pixels=max_pixels, report=report,
                           request_build=request_build)
        except _Superseded:
            session.rollback()
            return session.get(FrameJob, job_id)


def _decode(session: Session, store: FrameStore, job: FrameJob, *, max_pixels: int,
            report: Callable[[int, float], None], request_build: Callable[[int], object]) -> FrameJob:
    attempt = job.attempts
    scene, user = session.get(Scene, job.scene_id), session.get(User, job.user_id) if job.user_id else None
    if user is None:
        return _fail(session, job, "the user who uploaded the video no longer exists")
    try:
        data = store.get(job.file_id)
    except (FileMissing, FileCorrupt) as error:
        return _fail(session, job, f"the uploaded video cannot be read back: {error}")
    try:
        with pending_files(store) as pending:
            added = add_frames(session, pending, user, scene, data=data, content_type=job.content_type,
                               filename=job.filename, duration_ms=job.duration_ms, max_pixels=max_pixels,
                               progress=lambda fraction: report(job.id, DECODE_SHARE * fraction))
            current = session.execute(select(FrameJob.status, FrameJob.attempts)
                                      .where(FrameJob.id == job.id).with_for_update()).one()
            if tuple(current) != ("running", attempt):
                raise _Superseded  # its frames' files are removed again on the way out
            job.frame_ids, job.progress = [frame.id for frame in added], 1.0
            job.status, job.finished_at = "done", utcnow()
            session.commit()
    except C3SError as error:  # the video is unusable (too large, corrupt, not a video)
        job = _fail(session, job, str(error))
    else:
        request_build(scene.id)
    store.delete(job.file_id)  # the frames hold the pixels now, or the video is of no use
    return job


def discard_videos(session: Session, store: FrameStore, job_ids: list[int]) -> None:
    """Remove the videos of these failed jobs (the sweep failed them: their worker kept dying)."""
    for file_id in session.scalars(select(FrameJob.file_id).where(FrameJob.id.in_(job_ids))):
        store.delete(file_id)


def record_progress(session: Session, job_id: int, fraction: float) -> None:
    session.execute(update(FrameJob).where(FrameJob.id == job_id, FrameJob.status == "running")
                    .values(progress=round(min(1.0, max(0.0, fraction)), 3)))
    session.commit()


def _fail(session: Session, job: FrameJob, reason: str) -> FrameJob:
    return job_failures.fail(session, FrameJob, job.id, reason)


def fail_unqueued(session: Session, job: FrameJob, reason: str) -> None:
    """The job could not be queued: it fails at once (its video is not kept)."""
    _fail(session, job, reason)


def fail_unexpectedly(session: Session, job_id: int, error: Exception) -> None:
    job = job_failures.unfinished(session, FrameJob, job_id)
    if job is not None:
        _fail(session, job, job_failures.unexpected_reason(error, "decoding the video"))
