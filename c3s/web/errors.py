"""Every error leaves the API as JSON `{"message": ..., "detail": {...}}` with a 4xx status a
person can act on (503 with `Retry-After` when a service does not answer); an unexpected
failure is logged and answered 500 without internals. The one place errors become statuses:
the Flask handlers below and the fast path (:func:`error_parts`) both map from here."""

from __future__ import annotations

from apiflask import APIFlask, HTTPError
from flask import request
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from c3s.errors import C3SError, Unavailable

INTERNAL_ERROR = "internal error; the operators have been told"


def _body(status: int, message: str, detail: dict | None = None):
    return {"message": message, "detail": detail or {}}, status


def error_parts(error: C3SError) -> tuple[int, dict, dict[str, str]]:
    """A domain error as (status, JSON body, headers)."""
    headers = {}
    if error.retry_after_s is not None:
        headers = {"Retry-After": str(error.retry_after_s), "Cache-Control": "no-store"}
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="c3s"'
    return error.status, {"message": error.message, "detail": error.detail}, headers


# A service that does not answer, by the exceptions that say so: answered as Unavailable (503).
OUTAGES = (
    ((OperationalError, InterfaceError, PoolTimeout), "the database"),
    ((RedisConnectionError, RedisTimeoutError), "the cache (Redis)"),
    ((BrokerError,), "the task queue"),
)


VALIDATION_ERROR = "Validation error"
_FIELDS_NAMED = 3


def validation_message(detail: dict) -> str:
    """apiflask's "Validation error" with the first fields' reasons, so the message alone says
    what to change (``detail`` keeps them all, by location and field)."""
    reasons = []

    def walk(node, path: list[str]) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, [*path, str(key)])
        elif isinstance(node, list) and all(isinstance(item, str) for item in node):
            reasons.append(f"{'.'.join(path)}: {' '.join(node)}")
        elif isinstance(node, list):
            for index, item in enumerate(node):
                walk(item, [*path, str(index)])
        else:
            reasons.append(f"{'.'.join(path)}: {node}")

    walk(detail, [])
    if not reasons:
        return VALIDATION_ERROR
    more = len(reasons) - _FIELDS_NAMED
    return (f"{VALIDATION_ERROR}: " + "; ".join(reasons[:_FIELDS_NAMED])
            + (f" (and {more} more in detail)" if more > 0 else ""))


def init_app(app: APIFlask) -> None:
    for error_classes, service in OUTAGES:
        def _outage(error, service=service):
            app.logger.warning("%s does not answer: %s", service, error)
            status, body, headers = error_parts(
                Unavailable(f"{service} does not answer right now; try again in a moment"))
            return body, status, headers

        for error_class in error_classes:
            app.register_error_handler(error_class, _outage)

    @app.error_processor
    def _apiflask_error(error: HTTPError):
        detail = error.detail or {}
        message = validation_message(detail) if error.message == VALIDATION_ERROR else error.message
        return {"message": message, "detail": detail}, error.status_code, error.headers

    @app.errorhandler(C3SError)
    def _domain_error(error: C3SError):
        status, body, headers = error_parts(error)
        return body, status, headers

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(_error):
        limit = app.config["MAX_CONTENT_LENGTH"]
        length = request.content_length
        if length is not None and length <= limit:  # not the size: the form's parts or their memory
            parts = app.config.get("MAX_FORM_PARTS") or 1000
            return _body(413, f"the form has too many parts: at most {parts} fields and files, "
                              "and the form's text fields together at most "
                              f"{(app.config.get('MAX_FORM_MEMORY_SIZE') or 500_000) // 1000} kB",
                         {"max_parts": parts})
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
        # Keep what the exception says beyond its body: a 405's Allow (RFC 9110 requires it).
        headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
        return *_body(error.code or 500, error.description or error.name), headers

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        app.logger.exception("unhandled error", exc_info=error)
        return _body(500, INTERNAL_ERROR)
