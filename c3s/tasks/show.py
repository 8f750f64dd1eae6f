"""Show tasks: build a scene's colour maps for its current layout and frames."""

from __future__ import annotations

import logging

from celery import shared_task
from pymongo.errors import PyMongoError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import OperationalError

from c3s.services import services
from c3s.show import build_color_maps as build
from c3s.show import cache_for, pending_key

log = logging.getLogger(__name__)

# Known transient failures: the database, the file store or Redis briefly unreachable.
TRANSIENT = (OperationalError, PyMongoError, RedisConnectionError, RedisTimeoutError, ConnectionError,
             TimeoutError)


@shared_task(name="c3s.tasks.show.build_color_maps", bind=True, autoretry_for=TRANSIENT,
             retry_backoff=2, retry_backoff_max=60, retry_jitter=True, max_retries=8)
def build_color_maps(self, scene_id: int) -> str:
    """Build (or refresh) the scene's colour maps and track table; returns the build's status.

    Idempotent: a version already built is only given a fresh expiry. The "build pending" flag
    is cleared before anything is read, so a change committed while this runs queues one more
    build instead of being missed."""
    svc = services()
    cache = cache_for(svc.redis, svc.database.engine.url)
    cache.delete(pending_key(scene_id))
    with svc.database.session() as session:
        result = build(session, svc.store, svc.redis, scene_id, cache=cache)
    log.info("scene %s maps %s: %s (%d pixels, %d frames, %d reused, %.2f s)", scene_id, result.version,
             result.status, result.pixels, result.frames, result.reused_frames, result.seconds)
    return result.status


FRAME_RETRY_BACKOFF_MAX_S = 60


@shared_task(name="c3s.tasks.show.decode_frame_video", bind=True, autoretry_for=TRANSIENT, retry_backoff=2,
             retry_backoff_max=FRAME_RETRY_BACKOFF_MAX_S, retry_jitter=True, max_retries=8)
def decode_frame_video(self, job_id: int) -> str:
    """Decode an uploaded frame video into the scene's frames; returns the job's final status."""
    from c3s.frame_jobs import fail_unexpectedly, record_progress, run_frame_job
    from c3s.models import FrameJob
    from c3s.services import config
    from c3s.tasks.heartbeat import job_heartbeat
    from c3s.tasks.jobs import final_status, pause_for_retry, redelivered

    svc = services()

    def report(job, fraction: float) -> None:
        try:
            with svc.database.session() as progress_session:
                record_progress(progress_session, job, fraction)
        except OperationalError as error:  # progress is a courtesy: decoding goes on
            log.warning("progress of frame job %s not recorded: %s", job, error)

    beating = job_heartbeat(svc.database, FrameJob)
    with svc.database.session() as session:
        return final_status(session, job_id, lambda: run_frame_job(
            session, svc.store, job_id, max_pixels=config().max_image_pixels, report=report,
            request_build=svc.request_build, heartbeat=beating, redelivered=redelivered(self)),
            fail_unexpectedly, TRANSIENT,
            retrying=lambda job: pause_for_retry(self, svc.database, FrameJob, job,
                                                 within_s=FRAME_RETRY_BACKOFF_MAX_S))
