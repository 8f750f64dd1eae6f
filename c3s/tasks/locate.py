"""Locate tasks: take a job id, re-read the job and its file, and run it."""

from __future__ import annotations

from celery import shared_task
from pymongo.errors import PyMongoError
from sqlalchemy.exc import OperationalError

from c3s.locate.jobs import fail_unexpectedly, run_job
from c3s.models import LocateJob
from c3s.services import config, services
from c3s.tasks.heartbeat import job_heartbeat
from c3s.tasks.jobs import final_status, pause_for_retry, redelivered

# Known transient failures: the database or the file store briefly unreachable.
TRANSIENT = (OperationalError, PyMongoError, ConnectionError, TimeoutError)
RETRY_BACKOFF_MAX_S = 120


@shared_task(name="c3s.tasks.locate.locate_job", bind=True, autoretry_for=TRANSIENT,
             retry_backoff=2, retry_backoff_max=RETRY_BACKOFF_MAX_S, retry_jitter=True, max_retries=8)
def locate_job(self, job_id: int) -> str:
    """Locate the pixels seen in one upload; returns the job's final status."""
    database = services().database
    beating = job_heartbeat(database)
    with database.session() as session:
        return final_status(session, job_id, lambda: run_job(
            session, services().store, job_id, max_pixels=config().max_image_pixels,
            request_build=services().request_build, request_snap=request_snap, heartbeat=beating,
            redelivered=redelivered(self)),
            fail_unexpectedly, TRANSIENT,
            retrying=lambda job: pause_for_retry(self, database, LocateJob, job, within_s=RETRY_BACKOFF_MAX_S))


SNAP_TASK = "c3s.tasks.locate.snap_seats"
# A queued snap that never started (broker restarted, worker lost) stops blocking new ones then.
SNAP_PENDING_TTL_S = 300


def _snap_pending_key(scene_id: int) -> str:
    return f"c3s:locate:{scene_id}:snap-pending"


def request_snap(scene_id: int) -> bool:
    """Queue the scene's seat snapping unless a snap is queued and not started yet: the camera
    jobs of one calibration round finish together, and one snap after them covers them all.
    True when this call queued it. Without Redis (the embedded default) tasks run in process,
    so the snap runs now."""
    send, redis = services().send, services().redis
    if redis is not None and not redis.set(_snap_pending_key(scene_id), b"1", nx=True, ex=SNAP_PENDING_TTL_S):
        return False
    try:
        send(SNAP_TASK, scene_id)
    except BaseException:
        if redis is not None:
            redis.delete(_snap_pending_key(scene_id))
        raise
    return True


@shared_task(name=SNAP_TASK, autoretry_for=TRANSIENT, retry_backoff=2, retry_backoff_max=60, max_retries=8)
def snap_seats(scene_id: int) -> dict:
    """One calibration round's seat snapping over the whole scene (one snap per scene at a time)."""
    from sqlalchemy import text

    from c3s.locate.seat import snap_round
    from c3s.models import Scene

    redis = services().redis
    if redis is not None:  # jobs finishing from now on need a snap after this one
        redis.delete(_snap_pending_key(scene_id))
    with services().database.session() as session:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended('c3s-snap:' || :scene, 0))"),
                            {"scene": str(scene_id)})
        scene = session.get(Scene, scene_id)
        counts = snap_round(session, scene) if scene is not None else {}
        session.commit()
    if counts:
        services().request_build(scene_id)  # the snap moved pixels: rebuild the show's maps (coalesced)
    return counts


# A queued job whose message has not started within this time is presumed lost (a broker
# restart without persistence, say); a running job whose heartbeat stopped lost its worker.
STALE_QUEUED_S = 300


@shared_task(name="c3s.tasks.locate.sweep_stale_jobs")
def sweep_stale_jobs_task() -> dict:
    """Re-send jobs whose message was lost, run once more those whose worker was lost, and fail
    those whose worker was lost again (runs on a beat), for locate and frame jobs."""
    from c3s.frame_jobs import discard_videos
    from c3s.locate.jobs import sweep_stale_jobs
    from c3s.models import FrameJob

    send = services().send
    results = {}
    for model, task, key in ((LocateJob, "c3s.tasks.locate.locate_job", "locate"),
                             (FrameJob, "c3s.tasks.show.decode_frame_video", "frames")):
        with services().database.session() as session:
            result = sweep_stale_jobs(session, lambda job_id, task=task: send(task, job_id),
                                      queued_after_s=STALE_QUEUED_S,
                                      running_after_s=config().job_heartbeat_timeout_s, model=model)
            if model is FrameJob and result.failed:
                discard_videos(session, services().store, result.failed)
        results[key] = {"resent": result.resent, "requeued": result.requeued, "failed": result.failed}
    return results
