"""Every error leaves the API as JSON `{"message": ..., "detail": {...}}` with a 4xx status a
person can act on; an unexpected failure is logged and answered 500 without internals."""

from __future__ import annotations

from apiflask import APIFlask, HTTPError
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from c3s.errors import C3SError


def _body(status: int, message: str, detail: dict | None = None):
    return {"message": message, "detail": detail or {}}, status


def init_app(app: APIFlask) -> None:
    @app.error_processor
    def _apiflask_error(error: HTTPError):
        return {"message": error.message, "detail": error.detail or {}}, error.status_code, error.headers

    @app.errorhandler(C3SError)
    def _domain_error(error: C3SError):
        return _body(error.status, error.message, error.detail)

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(_error):
        limit = app.config["MAX_CONTENT_LENGTH"]
        return _body(413, f"the upload is larger than the limit of {limit // (1024 * 1024)} MiB",
                     {"max_bytes": limit})

    @app.errorhandler(IntegrityError)
    def _integrity(error: IntegrityError):
        # Services validate first; this is the last line, so a race or a missed rule is a 409
        # that names the rule rather than a 500.
        constraint = getattr(getattr(error.orig, "diag", None), "constraint_name", None)
        app.logger.warning("integrity error reached the API: %s", error.orig)
        return _body(409, "the change conflicts with data already stored"
                     + (f" (rule {constraint})" if constraint else ""), {"constraint": constraint})

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        return _body(error.code or 500, error.description or error.name)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        app.logger.exception("unhandled error", exc_info=error)
        return _body(500, "internal error; the operators have been told")
