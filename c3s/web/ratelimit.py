"""The API's rate limits (:mod:`c3s.limits`), keyed by the client's address or user."""

from __future__ import annotations

import hashlib

from flask import request

from c3s.limits import Rate
from c3s.web.context import config, services

TOO_MANY = "too many requests: see `Retry-After` (the message names the limit)"


def client_address() -> str:
    """The address the request came from (the socket's; a proxy in front sets it with ProxyFix)."""
    return request.remote_addr or "unknown"


def per_address(bucket: str, setting: str, what: str, *, fail_open: bool = True) -> None:
    """Count one request from this address against the setting's allowance per minute."""
    services().limiter.hit(bucket, client_address(), Rate(getattr(config(), setting)), what=what,
                           fail_open=fail_open)


def per_address_of(app, environ, bucket: str, setting: str, what: str) -> None:
    """:func:`per_address` for the WSGI fast path (no request context)."""
    svc = app.extensions["c3s"]
    svc.limiter.hit(bucket, environ.get("REMOTE_ADDR") or "unknown", Rate(getattr(svc.config, setting)),
                    what=what, fail_open=True)


def per_user(bucket: str, user_id: int, setting: str, what: str) -> None:
    services().limiter.hit(bucket, str(user_id), Rate(getattr(config(), setting)), what=what, fail_open=True)


def account_key(email: str) -> str:
    """The key of an account's counters: a digest, so no address is written to Redis."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]


def wrong_passwords() -> Rate:
    return Rate(config().rate_login_failures_per_account)
