"""Celery, wired in one function: `celery_init_app` gives each Flask app a Celery app configured
from the same `Config`, whose tasks run inside that Flask app's context so they reach the
database and the file store the same way the API does. Tasks are `shared_task`s taking ids.
The worker's Celery app is `c3s.worker:celery_app`.

With no broker configured (the embedded default) tasks run in process, eagerly."""

from __future__ import annotations

import logging
from collections.abc import Callable

from celery import Celery, Task
from flask import Flask

from c3s.config import Config
from c3s.services import services

log = logging.getLogger(__name__)

# Queues: a calibration rush (locate) must never starve the show (colour maps).
LOCATE_QUEUE = "locate"
SHOW_QUEUE = "show"
# The longest task (a long 4K blink clip) stays well below this; a task unacknowledged for
# longer is redelivered to another worker.
VISIBILITY_TIMEOUT_S = 2 * 3600
TASK_TIME_LIMIT_S = 30 * 60
TASK_MODULES = ("c3s.tasks.locate", "c3s.tasks.show")


def celery_settings(config: Config) -> dict:
    return {
        "broker_url": config.broker_url or "memory://",
        "task_always_eager": config.is_embedded,
        "task_eager_propagates": False,
        "task_ignore_result": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_time_limit": TASK_TIME_LIMIT_S,
        "task_soft_time_limit": TASK_TIME_LIMIT_S - 60,
        "broker_transport_options": {"visibility_timeout": VISIBILITY_TIMEOUT_S,
                                     "global_keyprefix": config.broker_key_prefix},
        "broker_connection_retry_on_startup": True,
        "task_routes": {
            # The sweep is short and must not wait behind a calibration rush.
            "c3s.tasks.locate.sweep_stale_jobs": {"queue": SHOW_QUEUE},
            "c3s.tasks.locate.*": {"queue": LOCATE_QUEUE},
            "c3s.tasks.show.*": {"queue": SHOW_QUEUE},
        },
        "task_default_queue": LOCATE_QUEUE,
        "beat_schedule": {
            "sweep-stale-locate-jobs": {"task": "c3s.tasks.locate.sweep_stale_jobs",
                                        "schedule": config.sweep_interval_s},
        },
        "worker_hijack_root_logger": False,
    }


def celery_init_app(app: Flask) -> Celery:
    """A Celery app of its own for this Flask app, whose tasks run inside its app context."""

    class FlaskTask(Task):
        def __call__(self, *args, **kwargs):
            with app.app_context():
                return self.run(*args, **kwargs)

    celery = Celery(app.name, task_cls=FlaskTask, include=list(TASK_MODULES))
    celery.conf.update(celery_settings(app.config["C3S"]))
    celery.set_default()
    app.extensions["celery"] = celery
    app.extensions["c3s"].send = sender(celery)
    return celery


def sender(celery: Celery) -> Callable[..., None]:
    """``send(task_name, *args)`` on this Celery app, from anywhere (no app context needed;
    run in process, inside the app's context, on the embedded default)."""

    def send(task_name: str, *args) -> None:
        celery.loader.import_default_modules()
        celery.tasks[task_name].delay(*args)

    return send


def send(task_name: str, *args) -> None:
    """Queue a task on the current app's Celery."""
    services().send(task_name, *args)


def queue_locate_job(job_id: int) -> bool:
    """Send a locate job to the workers. When the broker does not answer the job stays queued
    in the database and the stale-job sweep sends it once the broker is back; False then."""
    from kombu.exceptions import OperationalError as BrokerError

    try:
        send("c3s.tasks.locate.locate_job", job_id)
    except BrokerError:
        log.warning("broker unreachable; job %s waits for the sweep", job_id)
        return False
    return True
