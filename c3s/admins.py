"""First run: the administrator account and rights granted from the server's shell. Whoever can
run `c3s` on the server already holds the database, so these need no granter."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from c3s import accounts
from c3s.errors import NotFound
from c3s.models import User
from c3s.permissions import add_grant


@dataclass(frozen=True)
class AdminResult:
    user: User
    created: bool        # a new account was made
    granted: bool        # the account did not hold `admin` before


def user_by_email(session: Session, email: str) -> User:
    email = accounts.normalise_email(email)
    user = session.scalar(select(User).where(User.email == email))
    if user is None:
        raise NotFound(f"no account for {email}; it must sign up (or be made with c3s create-admin) first")
    return user


def create_admin(session: Session, *, email: str, password: str) -> AdminResult:
    """Make `email` an administrator. Idempotent: for an existing account it only makes sure
    the account holds `admin`, and keeps its password."""
    email = accounts.normalise_email(email)
    user = session.scalar(select(User).where(User.email == email))
    created = user is None
    if created:
        user = accounts.register(session, email=email, password=password)
    granted = add_grant(session, user=user, name="admin", scene_id=None)
    return AdminResult(user=user, created=created, granted=granted)


def grant_by_email(session: Session, *, email: str, permission: str, scene_id: int | None) -> bool:
    """Give the account `email` a right, everywhere or in one scene. False when already held."""
    return add_grant(session, user=user_by_email(session, email), name=permission, scene_id=scene_id)
