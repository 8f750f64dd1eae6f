"""Domain errors. Services raise them; the API turns each into a JSON error with its status, and
a task records its message on the job row."""

from __future__ import annotations


class C3SError(Exception):
    """An error a person can act on; `status` is the HTTP status the API answers with."""

    status = 400
    # When set, the answer tells the caller to ask again after this many seconds.
    retry_after_s: int | None = None

    def __init__(self, message: str, *, detail: dict | None = None):
        super().__init__(message)
        self.message = message
        self.detail = detail or {}


class Invalid(C3SError):
    status = 422


class Unauthorized(C3SError):
    status = 401


class Forbidden(C3SError):
    status = 403


class NotFound(C3SError):
    status = 404


class Conflict(C3SError):
    status = 409


class TooLarge(C3SError):
    """Past a size limit (an upload's bytes, pixels, frames or duration); nothing was stored."""

    status = 413


class UnsupportedMedia(C3SError):
    status = 415


class Unavailable(C3SError):
    """A service (the database, Redis) does not answer right now; the message says so without
    internals (the cause is chained and logged)."""

    status = 503
    retry_after_s = 2
