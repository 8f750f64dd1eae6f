"""Users, tokens, guests and permission grants."""

from __future__ import annotations

from apiflask import APIBlueprint
from sqlalchemy.exc import IntegrityError

from c3s import accounts, permissions
from c3s.errors import Conflict, NotFound, Unauthorized
from c3s.models import PERMISSIONS, User
from c3s.web.auth import current_token, current_user, token_auth
from c3s.web.context import config, db_session, services
from c3s.web.contract import path_values
from c3s.web.ratelimit import TOO_MANY, account_key, per_address, wrong_passwords
from c3s.web.schemas import (
    GrantChangeOut,
    GrantIn,
    GrantOut,
    GrantQuery,
    GuestIn,
    LoginIn,
    RegisteredOut,
    RegisterIn,
    TokenOut,
    UserOut,
)

bp = APIBlueprint("users", __name__, tag="Users")


def _token_response(user: User, kind: str, ttl_s: int) -> dict:
    token, row = accounts.issue_token(db_session(), user, kind=kind, ttl_s=ttl_s,
                                      key=services().token_key)
    db_session().commit()
    return {"token": token, "kind": row.kind, "expires_at": row.expires_at, "user": user}


@bp.post("/users")
@bp.input(RegisterIn, arg_name="body")
@bp.output(RegisteredOut, status_code=202)
@bp.doc(responses={429: TOO_MANY})
def register(body):
    """Register with email and password, then log in (`POST /api/tokens`). The answer is the
    same whether the address was free or already has an account, so it tells nobody which
    addresses have accounts (a limited number per address and minute)."""
    per_address("registrations", "rate_registrations_per_address", "registrations from your address")
    session = db_session()
    try:
        user = accounts.register(session, **body)
        session.commit()
        email = user.email
    except (Conflict, IntegrityError):  # taken (or taken a moment ago): answered alike
        session.rollback()
        email = accounts.normalise_email(body["email"])
    return {"email": email, "message": "registered unless the address already has an account; "
                                       "log in with its password"}


@bp.post("/tokens")
@bp.input(LoginIn, arg_name="body")
@bp.output(TokenOut, status_code=201)
@bp.doc(responses={401: "wrong email or password", 429: TOO_MANY})
def login(body):
    """Log in: exchange email and password for an API token. An account takes a limited number
    of wrong passwords per minute (then 429 until the minute is over, the password unchecked),
    and an address a limited number of attempts."""
    per_address("logins", "rate_logins_per_address", "login attempts from your address", fail_open=False)
    limiter, account = services().limiter, account_key(body["email"])
    limiter.check("wrong-passwords", account, wrong_passwords(), what="wrong passwords for this account")
    try:
        user = accounts.login(db_session(), email=body["email"], password=body["password"])
    except Unauthorized:
        limiter.hit("wrong-passwords", account, wrong_passwords(), what="wrong passwords for this account")
        raise
    limiter.reset("wrong-passwords", account)
    return _token_response(user, "session", config().token_ttl_s)


@bp.delete("/tokens/current")
@bp.auth_required(token_auth)
@bp.output({}, status_code=204)
def logout():
    """Revoke the token used for this request."""
    accounts.revoke(db_session(), current_token())
    db_session().commit()
    return ""


@bp.post("/guests")
@bp.input(GuestIn, arg_name="body")
@bp.output(TokenOut, status_code=201)
@bp.doc(responses={429: TOO_MANY})
def guest(body):
    """Create a guest user for a pixel phone and its device token (no password); an address
    may create a stadium's worth a minute (a carrier's NAT hides many phones behind one)."""
    per_address("guests", "rate_guests_per_address", "guests from your address")
    user = accounts.create_guest(db_session(), display_name=body["display_name"])
    return _token_response(user, "device", config().device_token_ttl_s)


@bp.get("/users/me")
@bp.auth_required(token_auth)
@bp.output(UserOut(partial=False))
def me():
    """The user this token belongs to."""
    return current_user()


def _user(user_id: int) -> User:
    user = db_session().get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} does not exist")
    return user


@bp.get("/users/<int:user_id>/permissions")
@bp.auth_required(token_auth)
@bp.output(GrantOut(many=True))
def list_grants(user_id: int):
    """The rights a user holds (yours, or anyone's for an admin)."""
    if user_id != current_user().id:
        permissions.require(db_session(), current_user(), "admin")
    grants = permissions.grants_of(db_session(), _user(user_id))
    return [{"permission": name, "scene_id": scene_id} for name, scene_id in sorted(
        grants, key=lambda g: (g[0], g[1] or 0))]


@bp.post("/users/<int:user_id>/permissions")
@bp.auth_required(token_auth)
@bp.input(GrantIn, arg_name="body")
@bp.output(GrantChangeOut)
def grant(user_id: int, body):
    """Grant a right, everywhere or in one scene (admins only)."""
    changed = permissions.grant(db_session(), granter=current_user(), user=_user(user_id),
                                name=body["permission"], scene_id=body["scene_id"])
    db_session().commit()
    return {"changed": changed, **body}


@bp.delete("/users/<int:user_id>/permissions/<string:permission>")
@bp.auth_required(token_auth)
@bp.input(GrantQuery, location="query", arg_name="query")
@bp.output(GrantChangeOut)
@path_values(permission=PERMISSIONS)
def revoke(user_id: int, permission: str, query):
    """Revoke a right (admins only); `scene_id` names the scene of a scene-limited right."""
    changed = permissions.revoke(db_session(), granter=current_user(), user=_user(user_id),
                                 name=permission, scene_id=query["scene_id"])
    db_session().commit()
    return {"changed": changed, "permission": permission, "scene_id": query["scene_id"]}
