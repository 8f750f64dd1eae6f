"""Accounts: registration and login with Argon2id hashes, opaque API tokens stored only as a
keyed hash, and guest users for pixel phones that join from a poster.

A token is 256 random bits, so a fast keyed hash (HMAC-SHA256 under the server's token key) is
as safe to store as a slow one: nobody can guess a token from its hash, and without the key
nobody can plant a hash of a token of their own. Argon2 is for passwords, which people choose.
Tokens issued before the key was used were stored as a plain SHA-256; they still work and are
re-stored under the key the first time they are used."""

from __future__ import annotations

import hashlib
import hmac
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


# Longer bearer strings are not ours: refused before any hashing or lookup.
MAX_TOKEN_CHARS = 128


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str, key: bytes) -> str:
    """The keyed hash stored for a token (64 hex digits, like the plain SHA-256 before it)."""
    return hmac.new(key, token.encode("utf-8"), hashlib.sha256).hexdigest()


def legacy_hash_token(token: str) -> str:
    """How tokens were stored before the token key: a plain SHA-256."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_hashes(token: str, key: bytes) -> tuple[str, str]:
    """(keyed, legacy) hashes: a lookup asks for either in one indexed read."""
    if not token or len(token) > MAX_TOKEN_CHARS:
        raise Unauthorized("unknown token; log in again")
    return hash_token(token, key), legacy_hash_token(token)


def check_token_state(revoked_at: datetime | None, expires_at: datetime, now: datetime) -> None:
    if revoked_at is not None:
        raise Unauthorized("this token was revoked; log in again")
    if as_utc(expires_at) <= now:
        raise Unauthorized("this token has expired; log in again")


def needs_touch(last_used_at: datetime | None, now: datetime) -> bool:
    last_used = as_utc(last_used_at)
    return last_used is None or now - last_used > LAST_USED_RESOLUTION


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


def issue_token(session: Session, user: User, *, kind: str, ttl_s: int, key: bytes) -> tuple[str, ApiToken]:
    """A new random token for `user`; the plain token is returned once and never stored."""
    token = new_token()
    now = utcnow()
    row = ApiToken(user_id=user.id, token_hash=hash_token(token, key), kind=kind,
                   created_at=now, expires_at=now + timedelta(seconds=ttl_s))
    session.add(row)
    session.flush()
    return token, row


def authenticate(session: Session, token: str, *, key: bytes,
                 now: datetime | None = None) -> tuple[User, ApiToken]:
    """The user a bearer token belongs to; expired, revoked and unknown tokens are refused."""
    now = now or utcnow()
    keyed, legacy = token_hashes(token, key)
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash.in_((keyed, legacy))))
    if row is None:
        raise Unauthorized("unknown token; log in again")
    check_token_state(row.revoked_at, row.expires_at, now)
    if row.token_hash != keyed:
        row.token_hash = keyed
    if needs_touch(row.last_used_at, now):
        row.last_used_at = now
    return row.user, row


def revoke(session: Session, token_row: ApiToken) -> None:
    if token_row.revoked_at is None:
        token_row.revoked_at = utcnow()
