"""The Flask application factory: a plain list of extensions bound to one app."""

from __future__ import annotations

from collections.abc import Mapping

from apiflask import APIFlask

from c3s import __version__
from c3s.config import Config


def create_app(config: Config | Mapping | None = None) -> APIFlask:
    """Build the C3S web app. `config` is a `Config`, a mapping of overrides on top of the
    environment, or None for the environment alone. Nothing connects until a request needs it."""
    if not isinstance(config, Config):
        config = Config.from_env().with_overrides(config or {})
    app = APIFlask(
        "c3s", title="C3S API", version=__version__,
        spec_path="/api/openapi.json", docs_path="/api/docs",
        instance_path=str(config.instance_path),
    )
    app.config.update(
        C3S=config,
        SECRET_KEY=config.secret_key,
        TESTING=config.testing,
        MAX_CONTENT_LENGTH=config.max_upload_bytes,
        VALIDATION_ERROR_STATUS_CODE=422,
        AUTO_404_RESPONSE=True,
        INFO={"description": "Scenes, pixels, frames and the show of the Cloud Scene Screen Service."},
    )

    from c3s.accounts import configure_hashing
    from c3s.tasks import celery_init_app
    from c3s.web import api, context, contract, docs, errors, inputs, pages, statuses

    configure_hashing(lanes=config.password_hash_lanes, slots=config.password_hash_slots)
    context.init_app(app)
    errors.init_app(app)
    inputs.init_app(app)
    statuses.init_app(app)
    contract.init_app(app)
    api.init_app(app)
    pages.init_app(app)
    docs.init_app(app)
    celery_init_app(app)
    return app
