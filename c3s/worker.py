"""Worker entry point: `celery -A c3s.worker:celery_app worker -Q locate,show`."""

from c3s.web import create_app

flask_app = create_app()
celery_app = flask_app.extensions["celery"]
