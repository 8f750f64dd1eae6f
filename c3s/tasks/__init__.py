"""The Celery app. Created at module level, configured from the same `Config` as the web app in
`celery_init_app`, and every task runs inside that Flask app's context so it can reach the
database and the file store the same way the API does.

With no broker configured (the embedded default) tasks run in process, eagerly."""

from __future__ import annotations

from celery import Celery, Task
from flask import Flask

from c3s.config import Config

# Queues: a calibration rush (locate) must never starve the show (colour maps).
LOCATE_QUEUE = "locate"
SHOW_QUEUE = "show"
# The longest task (a long 4K blink clip) stays well below this; a task unacknowledged for
# longer is redelivered to another worker.
VISIBILITY_TIMEOUT_S = 2 * 3600
TASK_TIME_LIMIT_S = 30 * 60


class AppContextTask(Task):
    abstract = True

    def __call__(self, *args, **kwargs):
        flask_app = getattr(self.app, "flask_app", None)
        if flask_app is None:
            raise RuntimeError("the Celery app is not bound to a Flask app; use celery_init_app")
        with flask_app.app_context():
            return self.run(*args, **kwargs)


celery_app = Celery("c3s", task_cls=AppContextTask, include=["c3s.tasks.locate"])


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
        "broker_transport_options": {"visibility_timeout": VISIBILITY_TIMEOUT_S},
        "broker_connection_retry_on_startup": True,
        "task_routes": {
            "c3s.tasks.locate.*": {"queue": LOCATE_QUEUE},
            "c3s.tasks.show.*": {"queue": SHOW_QUEUE},
        },
        "task_default_queue": LOCATE_QUEUE,
        "worker_hijack_root_logger": False,
    }


def celery_init_app(app: Flask) -> Celery:
    celery_app.conf.update(celery_settings(app.config["C3S"]))
    celery_app.flask_app = app
    celery_app.set_default()
    app.extensions["celery"] = celery_app
    return celery_app
