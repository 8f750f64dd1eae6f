"""Every error leaves the API as JSON `{"message": ..., "detail": {...}}` with a 4xx status a
person can act on; a service that does not answer (PostgreSQL, Redis, the broker) is a 503 with
`Retry-After`; an unexpected failure is logged and answered 500 without internals."""

from __future__ import annotations

from apiflask import APIFlask, HTTPError
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from c3s.errors import C3SError


def _body(status: int, message: str, detail: dict | None = None):
    return {"message": message, "detail": detail or {}}, status


RETRY_AFTER_S = 2
# What does not answer, by the exception that says so.
OUTAGES = (
    ((OperationalError, InterfaceError, PoolTimeout), "the database"),
    ((RedisConnectionError, RedisTimeoutError), "the cache (Redis)"),
    ((BrokerError,), "the task queue"),
)


def outage_body(service: str):
    return ({"message": f"{service} does not answer right now; try again in a moment",
             "detail": {"retry_after_s": RETRY_AFTER_S}}, 503, {"Retry-After": str(RETRY_AFTER_S)})


def init_app(app: APIFlask) -> None:
    for errors, service in OUTAGES:
        def _outage(error, service=service):
            app.logger.warning("%s does not answer: %s", service, error)
            return outage_body(service)

        for error_class in errors:
            app.register_error_handler(error_class, _outage)

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
