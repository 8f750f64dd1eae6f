"""Worker entry point: `celery -A c3s.worker:celery_app worker -Q locate,show`."""

from c3s.config import Config
from c3s.web import create_app

_config = Config.from_env()
# A worker's statements (a stadium's fusion, a seat map) may run longer than a request's.
flask_app = create_app(_config.with_overrides({"db_statement_timeout_s": _config.worker_db_statement_timeout_s}))
celery_app = flask_app.extensions["celery"]
