"""The join rush: a phone from a poster becomes a guest and a pixel of the scene in one statement,
and a playing phone checks in with one read.

When a show is announced a stadium's phones join within a minute or two, so the join is built
for that: on PostgreSQL one prepared statement (a CTE) takes the scene's next pixel number from
the counter in the scene row (``UPDATE … RETURNING``, so no lock outlives the statement) and
inserts the guest user, its ``pixel`` right, its device token's keyed hash and the pixel; one
more prepared statement reads a phone's token, scene and pixel for its check-in. Both run on one
autocommit connection per thread. The embedded SQLite default takes the ORM path of
:mod:`c3s.accounts` and :mod:`c3s.scenes`, which gives the same rows and answers.

The rights and checks are those of ``POST /api/guests`` followed by ``POST …/join``: a guest holds
the ``pixel`` right everywhere, so it may join any scene that exists and has not ended.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from c3s import accounts, scenes
from c3s.db import ThreadConnections
from c3s.errors import Conflict, NotFound, Unauthorized, Unavailable
from c3s.models import Scene, utcnow

_JOIN_SQL = """
WITH scene AS (
    UPDATE scenes SET next_pixel_number = next_pixel_number + 1
    WHERE id = $1 AND status <> 'ended'
    RETURNING id, width, height, next_pixel_number - 1 AS number, method_id, max_gps_accuracy_m, geo_lat
), guest AS (
    INSERT INTO users (is_guest, display_name) SELECT true, $2 FROM scene RETURNING id, created_at
), pixel_right AS (
    INSERT INTO user_permissions (user_id, permission_id)
    SELECT guest.id, permissions.id FROM guest, permissions WHERE permissions.name = 'pixel'
), token AS (
    INSERT INTO api_tokens (user_id, token_hash, kind, created_at, expires_at)
    SELECT guest.id, $3, 'device', now(), now() + make_interval(secs => $4) FROM guest
    RETURNING expires_at
), pixel AS (
    INSERT INTO pixels (scene_id, scene_width, scene_height, user_id, number, status)
    SELECT scene.id, scene.width, scene.height, guest.id, scene.number, 'joined' FROM scene, guest
    RETURNING number, status
)
SELECT guest.id, guest.created_at, token.expires_at, pixel.number, pixel.status, methods.code,
       scene.max_gps_accuracy_m, scene.geo_lat IS NOT NULL
FROM scene JOIN methods ON methods.id = scene.method_id, guest, token, pixel
"""

_MY_PIXEL_SQL = """
SELECT t.id, t.token_hash, t.expires_at, t.revoked_at, t.last_used_at,
       s.id, m.code, s.max_gps_accuracy_m, s.geo_lat IS NOT NULL, p.number, p.status, p.excluded_reason,
       p.offset_ms
FROM api_tokens t
LEFT JOIN scenes s ON s.id = $1
LEFT JOIN methods m ON m.id = s.method_id
LEFT JOIN pixels p ON p.scene_id = s.id AND p.user_id = t.user_id
WHERE t.token_hash IN ($2, $3)
LIMIT 1
"""

_PREPARED = {
    "c3s_guest_join": ("bigint, text, text, double precision", _JOIN_SQL),
    "c3s_my_pixel": ("bigint, text, text", _MY_PIXEL_SQL),
}


@dataclass(frozen=True)
class Locating:
    """What the scene's method needs to tell a phone how it will be located."""

    method: str
    max_gps_accuracy_m: float
    georeferenced: bool

    @classmethod
    def of(cls, scene: Scene) -> Locating:
        return cls(scene.method.code, scene.max_gps_accuracy_m, scene.geo_lat is not None)


@dataclass(frozen=True)
class GuestPixel:
    """A new guest, its device token (shown once) and its pixel in the scene."""

    token: str
    user_id: int
    display_name: str
    created_at: datetime
    expires_at: datetime
    scene_id: int
    number: int
    status: str
    locating: Locating

    def json(self) -> dict:
        """The answer's fields but the calibration (which the web layer adds)."""
        return {"token": self.token, "kind": "device", "expires_at": _iso(self.expires_at),
                "user": {"id": self.user_id, "email": None, "display_name": self.display_name,
                         "is_guest": True, "created_at": _iso(self.created_at)},
                "scene_id": self.scene_id, "number": self.number, "status": self.status, "offset_ms": None}


@dataclass(frozen=True)
class MyPixel:
    """A phone's own pixel, as its check-in reads it."""

    scene_id: int
    number: int
    status: str
    excluded_reason: str | None
    offset_ms: float | None
    locating: Locating

    def json(self) -> dict:
        """The answer's fields but the calibration (which the web layer adds)."""
        return {"scene_id": self.scene_id, "number": self.number, "status": self.status,
                "excluded_reason": self.excluded_reason, "offset_ms": self.offset_ms}


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


class Rush:
    """Guest joins and check-ins of one process, on PostgreSQL by prepared statements, on
    SQLite through the ORM."""

    def __init__(self, engine, *, key_source: Callable[[], bytes], device_token_ttl_s: int):
        self.engine = engine
        self._key_source = key_source
        self.ttl_s = device_token_ttl_s
        self.statements = _Statements(engine.url) if engine.dialect.name == "postgresql" else None

    @property
    def key(self) -> bytes:
        """The token key, asked for on first use (it may live in a file made then)."""
        return self._key_source()

    # ------------------------------------------------------------------------- joining

    def join_as_guest(self, scene_id: int, display_name: str = "") -> GuestPixel:
        """A new guest user who is a pixel of ``scene_id``, with its device token."""
        display_name = display_name.strip()
        if self.statements is None:
            return self._orm_join(scene_id, display_name)
        token = accounts.new_token()
        row = self.statements.run("c3s_guest_join", (scene_id, display_name, accounts.hash_token(token, self.key),
                                                     float(self.ttl_s)))
        if row is None:
            self._why_not_joined(scene_id)
        user_id, created_at, expires_at, number, status, method, accuracy, georeferenced = row
        return GuestPixel(token, user_id, display_name, created_at, expires_at, scene_id, number, status,
                          Locating(method, accuracy, georeferenced))

    def _why_not_joined(self, scene_id: int) -> None:
        found = self.statements.query("SELECT status FROM scenes WHERE id = %s", (scene_id,))
        if found is None:
            raise NotFound(f"scene {scene_id} does not exist")
        raise Conflict(f"the show in scene {scene_id} has ended")

    def _orm_join(self, scene_id: int, display_name: str) -> GuestPixel:
        with Session(self.engine, expire_on_commit=False) as session:
            scene = scenes.get_scene(session, scene_id)
            if scene.status == "ended":
                raise Conflict(f"the show in scene {scene.id} has ended")
            user = accounts.create_guest(session, display_name=display_name)
            token, row = accounts.issue_token(session, user, kind="device", ttl_s=self.ttl_s, key=self.key)
            pixel = scenes.join(session, user, scene)
            session.commit()
            return GuestPixel(token, user.id, user.display_name, user.created_at, row.expires_at, scene.id,
                              pixel.number, pixel.status, Locating.of(scene))

    # ------------------------------------------------------------------------ checking in

    def my_pixel(self, scene_id: int, token: str) -> MyPixel:
        """The pixel the bearer of ``token`` is in ``scene_id``; an unknown, revoked or expired
        token is refused (401), an unknown scene or no pixel there is a 404."""
        keyed, legacy = accounts.token_hashes(token, self.key)
        if self.statements is None:
            return self._orm_my_pixel(scene_id, token)
        row = self.statements.run("c3s_my_pixel", (scene_id, keyed, legacy))
        if row is None:
            raise Unauthorized("unknown token; log in again")
        token_id, stored_hash, expires_at, revoked_at, last_used_at = row[:5]
        now = utcnow()
        accounts.check_token_state(revoked_at, expires_at, now)
        if stored_hash != keyed or accounts.needs_touch(last_used_at, now):
            self.statements.query("UPDATE api_tokens SET token_hash = %s, last_used_at = now() WHERE id = %s"
                                  " RETURNING id", (keyed, token_id))
        found_scene, method, accuracy, georeferenced, number, status, reason, offset_ms = row[5:]
        if found_scene is None:
            raise NotFound(f"scene {scene_id} does not exist")
        if number is None:
            raise NotFound("you have not joined this scene", detail={"reason": "not_joined"})
        return MyPixel(scene_id, number, status, reason, offset_ms, Locating(method, accuracy, georeferenced))

    def _orm_my_pixel(self, scene_id: int, token: str) -> MyPixel:
        with Session(self.engine, expire_on_commit=False) as session:
            user, _ = accounts.authenticate(session, token, key=self.key)
            session.commit()
            scene = scenes.get_scene(session, scene_id)
            pixel = scenes.pixel_of(session, scene, user)
            if pixel is None:
                raise NotFound("you have not joined this scene", detail={"reason": "not_joined"})
            return MyPixel(scene.id, pixel.number, pixel.status, pixel.excluded_reason, pixel.offset_ms,
                           Locating.of(scene))


class _Statements:
    """The rush's prepared statements on one autocommit connection per thread."""

    def __init__(self, url):
        self.connections = ThreadConnections(url, application_name="c3s-rush", prepared=_PREPARED)

    def run(self, name: str, params: tuple):
        placeholders = ", ".join(["%s"] * len(params))
        return self.query(f"EXECUTE {name} ({placeholders})", params)

    def query(self, sql: str, params: tuple):
        import psycopg2

        try:
            cursor = self.connections.cursor()
            cursor.execute(sql, params)
            return cursor.fetchone()
        except (psycopg2.OperationalError, psycopg2.InterfaceError) as error:
            # Not retried: a join that reached the database may have committed.
            self.connections.drop()
            raise Unavailable("the database does not answer; try again in a moment") from error
