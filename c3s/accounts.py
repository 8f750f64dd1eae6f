"""Accounts: registration and login with Argon2id hashes, opaque API tokens stored only as a
SHA-256 hash, and guest users for pixel phones that join from a poster."""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from c3s.errors import Conflict, Invalid, Unauthorized, Unavailable
from c3s.models import ApiToken, Permission, User, UserPermission, as_utc, utcnow

# Argon2id with RFC 9106's low-memory profile (argon2-cffi's defaults: 3 passes over 64 MiB)
# but one lane: a hash then keeps one core busy, not every core, so logins cannot starve the
# clock and the show's reads. At most one hash runs at once per process (settings
# C3S_PASSWORD_HASH_LANES and C3S_PASSWORD_HASH_SLOTS, 0 slots meaning no limit); a login that
# finds every slot taken is answered 503 with Retry-After at once: waiting would hold one of
# the server's few threads, and a storm of logins would leave none for the clock.
password_hasher = PasswordHasher(parallelism=1)
_hash_slots: threading.BoundedSemaphore | None = threading.BoundedSemaphore(1)


def configure_hashing(*, lanes: int, slots: int) -> None:
    """Set the hasher's lanes (parallelism) and how many hashes may run at once (0: any)."""
    global password_hasher, _hash_slots
    if password_hasher.parallelism != lanes:
        password_hasher = PasswordHasher(parallelism=lanes)
    _hash_slots = threading.BoundedSemaphore(slots) if slots else None


BUSY_HASHING = "the server is checking too many passwords right now; try again in a moment"


def hashing_busy() -> bool:
    """Whether every hash slot is taken now (a login would be answered 503)."""
    slots = _hash_slots
    return slots is not None and slots._value == 0  # noqa: SLF001 - a peek, no acquire


@contextmanager
def _hashing() -> Iterator[None]:
    slots = _hash_slots
    if slots is None:
        yield
        return
    if not slots.acquire(blocking=False):
        raise Unavailable(BUSY_HASHING)
    try:
        yield
    finally:
        slots.release()


def hash_password(password: str) -> str:
    with _hashing():
        return password_hasher.hash(password)


def _verify_password(password_hash: str, password: str) -> None:
    with _hashing():
        password_hasher.verify(password_hash, password)

MIN_PASSWORD_LENGTH = 10
TOKEN_BYTES = 32
# Writing last_used_at on every request would turn each read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=5)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    local, _, domain = email.partition("@")
    if not local or "." not in domain or " " in email:
        raise Invalid(f"{email!r} is not an email address")
    return email


def grant_default_permissions(session: Session, user: User) -> None:
    pixel = session.scalar(select(Permission).where(Permission.name == "pixel"))
    session.add(UserPermission(user=user, permission_id=pixel.id))


def register(session: Session, *, email: str, password: str, display_name: str = "") -> User:
    """Create a registered user who may join scenes as a pixel."""
    email = normalise_email(email)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    password_hash = hash_password(password)  # before the look-up: the same work either way
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict(f"an account for {email} exists already; log in instead")
    user = User(email=email, password_hash=password_hash, display_name=display_name.strip(), is_guest=False)
    session.add(user)
    grant_default_permissions(session, user)
    session.flush()
    return user


def create_guest(session: Session, *, display_name: str = "") -> User:
    """A user for a phone that joined from a poster: no password, a device token instead."""
    user = User(is_guest=True, display_name=display_name.strip())
    session.add(user)
    grant_default_permissions(session, user)
    session.flush()
    return user


def login(session: Session, *, email: str, password: str) -> User:
    """Check the password; re-hash it when the hasher's parameters have changed."""
    failure = Unauthorized("wrong email or password")
    try:
        email = normalise_email(email)
    except Invalid:
        raise failure from None
    user = session.scalar(select(User).where(User.email == email))
    if user is None or user.password_hash is None:
        hash_password(password)  # same work either way, so timing does not reveal accounts
        raise failure
    try:
        _verify_password(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        raise failure from None
    if password_hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    return user


def issue_token(session: Session, user: User, *, kind: str, ttl_s: int) -> tuple[str, ApiToken]:
    """A new random token for `user`; the plain token is returned once and never stored."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    now = utcnow()
    row = ApiToken(user_id=user.id, token_hash=hash_token(token), kind=kind,
                   created_at=now, expires_at=now + timedelta(seconds=ttl_s))
    session.add(row)
    session.flush()
    return token, row


def authenticate(session: Session, token: str, *, now: datetime | None = None) -> tuple[User, ApiToken]:
    """The user a bearer token belongs to; expired, revoked and unknown tokens are refused."""
    now = now or utcnow()
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
    if row is None:
        raise Unauthorized("unknown token; log in again")
    if row.revoked_at is not None:
        raise Unauthorized("this token was revoked; log in again")
    if as_utc(row.expires_at) <= now:
        raise Unauthorized("this token has expired; log in again")
    last_used = as_utc(row.last_used_at)
    if last_used is None or now - last_used > LAST_USED_RESOLUTION:
        row.last_used_at = now
    return row.user, row


def revoke(session: Session, token_row: ApiToken) -> None:
    if token_row.revoked_at is None:
        token_row.revoked_at = utcnow()
