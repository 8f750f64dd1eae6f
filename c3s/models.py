"""SQLAlchemy models mirroring `schema.sql` (the PostgreSQL truth; tests/test_schema.py proves
the two agree). On the embedded SQLite database these models create the tables themselves, with
every constraint that SQLite can express."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Double,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    SmallInteger,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# SQLite only auto-increments INTEGER PRIMARY KEY, so big ids are plain integers there.
BigId = BigInteger().with_variant(Integer(), "sqlite")
SmallId = SmallInteger().with_variant(Integer(), "sqlite")
Timestamp = DateTime(timezone=True)
JsonDocument = JSON().with_variant(JSONB(), "postgresql")

METHOD_CODES = ("qr", "blink", "gps", "sound", "seat")
PIXEL_STATUSES = ("joined", "located", "excluded", "left")
SCENE_STATUSES = ("calibrating", "ready", "playing", "ended")
FIT_MODES = ("contain", "cover", "stretch")
SCENE_UNITS = ("m", "seat", "ft")
JOB_STATUSES = ("queued", "running", "done", "failed")
PERMISSIONS = ("pixel", "observer", "moderator", "scene_admin", "admin")


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; every stored time is UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(
            "is_guest OR (email IS NOT NULL AND password_hash IS NOT NULL)",
            name="users_registered_has_credentials",
        ),
        CheckConstraint("email = lower(email)", name="users_email_lowercase"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str | None] = mapped_column(Text, unique=True)
    display_name: Mapped[str] = mapped_column(Text, server_default=text("''"), default="")
    password_hash: Mapped[str | None] = mapped_column(Text)
    is_guest: Mapped[bool] = mapped_column(Boolean, server_default=text("false"), default=False)
    created_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now(), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(Timestamp)

    grants: Mapped[list[UserPermission]] = relationship(
        back_populates="user", foreign_keys="UserPermission.user_id", cascade="all, delete-orphan"
    )


class Permission(Base):
    __tablename__ = "permissions"

    id: Mapped[int] = mapped_column(SmallId, primary_key=True)
    name: Mapped[str] = mapped_column(Text, unique=True)
    description: Mapped[str] = mapped_column(Text, server_default=text("''"), default="")


class Method(Base):
    __tablename__ = "methods"
    __table_args__ = (CheckConstraint(_in("code", METHOD_CODES), name="methods_code_known"),)

    id: Mapped[int] = mapped_column(SmallId, primary_key=True)
    code: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, server_default=text("''"), default="")


class Scene(Base):
    __tablename__ = "scenes"
    __table_args__ = (
        CheckConstraint("length(trim(name)) > 0", name="scenes_name_not_blank"),
        CheckConstraint("width > 0 AND height > 0", name="scenes_size_positive"),
        CheckConstraint(_in("units", SCENE_UNITS), name="scenes_units_known"),
        CheckConstraint(_in("status", SCENE_STATUSES), name="scenes_status_known"),
        CheckConstraint(_in("fit", FIT_MODES), name="scenes_fit_known"),
        CheckConstraint(
            "(geo_lat IS NULL AND geo_lon IS NULL AND geo_bearing_deg IS NULL AND geo_metres_per_unit IS NULL)"
            " OR (geo_lat BETWEEN -90 AND 90 AND geo_lon BETWEEN -180 AND 180"
            " AND geo_bearing_deg IS NOT NULL AND geo_metres_per_unit > 0)",
            name="scenes_geo_complete",
        ),
        CheckConstraint("max_gps_accuracy_m > 0", name="scenes_gps_accuracy_positive"),
        CheckConstraint("layout_version >= 0", name="scenes_layout_version_nonnegative"),
        CheckConstraint("next_pixel_number >= 0", name="scenes_next_pixel_number_nonnegative"),
        CheckConstraint("frames_version >= 0", name="scenes_frames_version_nonnegative"),
        CheckConstraint("sync_burst_ms BETWEEN 1 AND 60000", name="scenes_sync_burst_bounded"),
        UniqueConstraint("id", "width", "height", name="scenes_id_size_key"),
        Index("scenes_owner_idx", "owner_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    owner_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="RESTRICT"))
    method_id: Mapped[int] = mapped_column(SmallId, ForeignKey("methods.id", ondelete="RESTRICT"))
    width: Mapped[float] = mapped_column(Double)
    height: Mapped[float] = mapped_column(Double)
    units: Mapped[str] = mapped_column(Text, server_default=text("'m'"), default="m")
    status: Mapped[str] = mapped_column(Text, server_default=text("'calibrating'"), default="calibrating")
    fit: Mapped[str] = mapped_column(Text, server_default=text("'contain'"), default="contain")
    show_start_at: Mapped[datetime | None] = mapped_column(Timestamp)
    show_loop: Mapped[bool] = mapped_column(Boolean, server_default=text("false"), default=False)
    geo_lat: Mapped[float | None] = mapped_column(Double)
    geo_lon: Mapped[float | None] = mapped_column(Double)
    geo_bearing_deg: Mapped[float | None] = mapped_column(Double)
    geo_metres_per_unit: Mapped[float | None] = mapped_column(Double)
    max_gps_accuracy_m: Mapped[float] = mapped_column(Double, server_default=text("15"), default=15.0)
    temperature_c: Mapped[float] = mapped_column(Double, server_default=text("20"), default=20.0)
    temperature_max_c: Mapped[float | None] = mapped_column(Double)  # None: a single reading
    humidity_pct: Mapped[float | None] = mapped_column(Double)  # None: unknown
    layout_version: Mapped[int] = mapped_column(Integer, server_default=text("0"), default=0)
    next_pixel_number: Mapped[int] = mapped_column(Integer, server_default=text("0"), default=0)
    # Bumped by every frame upload, retime, reorder and delete (c3s/frames.py); with
    # layout_version it names the colour maps (c3s/show/versions.py).
    frames_version: Mapped[int] = mapped_column(Integer, server_default=text("0"), default=0)
    # A sync burst inside the show (c3s/sync.py): phones blink from sync_burst_at for sync_burst_ms.
    sync_burst_at: Mapped[datetime | None] = mapped_column(Timestamp)
    sync_burst_ms: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        Timestamp, server_default=func.now(), default=utcnow, onupdate=utcnow
    )

    method: Mapped[Method] = relationship(lazy="joined")
    owner: Mapped[User] = relationship()
    anchors: Mapped[list[Anchor]] = relationship(
        back_populates="scene", cascade="all, delete-orphan", order_by="Anchor.key"
    )


class Anchor(Base):
    __tablename__ = "anchors"
    __table_args__ = (UniqueConstraint("scene_id", "key", name="anchors_scene_key_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    scene_id: Mapped[int] = mapped_column(BigId, ForeignKey("scenes.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(Text)
    x: Mapped[float] = mapped_column(Double)
    y: Mapped[float] = mapped_column(Double)

    scene: Mapped[Scene] = relationship(back_populates="anchors")


class UserPermission(Base):
    __tablename__ = "user_permissions"
    __table_args__ = (
        UniqueConstraint(
            "user_id", "permission_id", "scene_id",
            name="user_permissions_grant_key", postgresql_nulls_not_distinct=True,
        ),
        Index("user_permissions_user_idx", "user_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"))
    permission_id: Mapped[int] = mapped_column(SmallId, ForeignKey("permissions.id", ondelete="CASCADE"))
    scene_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("scenes.id", ondelete="CASCADE"))
    granted_by: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id", ondelete="SET NULL"))
    granted_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now(), default=utcnow)

    user: Mapped[User] = relationship(back_populates="grants", foreign_keys=[user_id])
    permission: Mapped[Permission] = relationship(lazy="joined")


class ApiToken(Base):
    __tablename__ = "api_tokens"
    __table_args__ = (
        CheckConstraint(_in("kind", ("session", "device")), name="api_tokens_kind_known"),
        CheckConstraint("expires_at > created_at", name="api_tokens_expiry_after_creation"),
        Index("api_tokens_user_idx", "user_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(Text, unique=True)
    kind: Mapped[str] = mapped_column(Text, server_default=text("'session'"), default="session")
    created_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(Timestamp)
    revoked_at: Mapped[datetime | None] = mapped_column(Timestamp)
    last_used_at: Mapped[datetime | None] = mapped_column(Timestamp)

    user: Mapped[User] = relationship()


class Pixel(Base):
    __tablename__ = "pixels"
    __table_args__ = (
        ForeignKeyConstraint(
            ["scene_id", "scene_width", "scene_height"],
            ["scenes.id", "scenes.width", "scenes.height"],
            name="pixels_scene_fkey", ondelete="CASCADE", onupdate="CASCADE",
        ),
        UniqueConstraint("scene_id", "user_id", name="pixels_scene_user_key"),
        UniqueConstraint("scene_id", "number", name="pixels_scene_number_key"),
        CheckConstraint("number >= 0", name="pixels_number_nonnegative"),
        CheckConstraint(_in("status", PIXEL_STATUSES), name="pixels_status_known"),
        CheckConstraint(
            "(x IS NULL AND y IS NULL AND located_by IS NULL AND located_at IS NULL)"
            " OR (x IS NOT NULL AND y IS NOT NULL AND located_by IS NOT NULL AND located_at IS NOT NULL)",
            name="pixels_position_complete",
        ),
        CheckConstraint(
            "x IS NULL OR (x BETWEEN 0 AND scene_width AND y BETWEEN 0 AND scene_height)",
            name="pixels_inside_scene",
        ),
        CheckConstraint("status <> 'located' OR x IS NOT NULL", name="pixels_located_has_position"),
        CheckConstraint(_in("located_by", METHOD_CODES), name="pixels_located_by_known"),
        CheckConstraint("confidence BETWEEN 0 AND 1", name="pixels_confidence_unit"),
        CheckConstraint("sigma > 0", name="pixels_sigma_positive"),
        Index("pixels_scene_status_idx", "scene_id", "status"),
        Index("pixels_user_idx", "user_id"),
        Index("pixels_seat_idx", "seat_id"),
        CheckConstraint("offset_ms BETWEEN -1000 AND 1000", name="pixels_offset_bounded"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    scene_id: Mapped[int] = mapped_column(BigId)
    scene_width: Mapped[float] = mapped_column(Double)
    scene_height: Mapped[float] = mapped_column(Double)
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(Text, server_default=text("'joined'"), default="joined")
    x: Mapped[float | None] = mapped_column(Double)
    y: Mapped[float | None] = mapped_column(Double)
    sigma: Mapped[float | None] = mapped_column(Double)
    located_by: Mapped[str | None] = mapped_column(Text)
    confidence: Mapped[float | None] = mapped_column(Double)
    located_at: Mapped[datetime | None] = mapped_column(Timestamp)
    excluded_reason: Mapped[str | None] = mapped_column(Text)
    joined_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now(), default=utcnow)
    # The seat a camera-found position snapped to (schema.sql adds these with ALTER TABLE).
    seat_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("seats.id", ondelete="SET NULL"))
    seat_confidence: Mapped[float | None] = mapped_column(Double)
    # The light-output offset blink clips measured (ms, positive = late): the phone plays the
    # show this much earlier (schema.sql adds it with ALTER TABLE).
    offset_ms: Mapped[float | None] = mapped_column(Double)
    # The phone's last reported clock offset uncertainty (clock.js uncertaintyMs), ms.
    clock_uncertainty_ms: Mapped[float | None] = mapped_column(Double)

    scene: Mapped[Scene] = relationship()
    user: Mapped[User] = relationship()


class Frame(Base):
    __tablename__ = "frames"
    __table_args__ = (
        UniqueConstraint("scene_id", "position", name="frames_scene_position_key"),
        CheckConstraint("position >= 0", name="frames_position_nonnegative"),
        CheckConstraint("duration_ms > 0", name="frames_duration_positive"),
        CheckConstraint("width > 0 AND height > 0", name="frames_size_positive"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    scene_id: Mapped[int] = mapped_column(BigId, ForeignKey("scenes.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    duration_ms: Mapped[int] = mapped_column(Integer)
    file_id: Mapped[str] = mapped_column(Text, unique=True)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now(), default=utcnow)


class LocateJob(Base):
    __tablename__ = "locate_jobs"
    __table_args__ = (
        CheckConstraint(_in("method", METHOD_CODES), name="locate_jobs_method_known"),
        CheckConstraint(_in("status", JOB_STATUSES), name="locate_jobs_status_known"),
        CheckConstraint("status <> 'failed' OR reason IS NOT NULL", name="locate_jobs_failed_has_reason"),
        CheckConstraint("attempts >= 0", name="locate_jobs_attempts_nonnegative"),
        CheckConstraint("worker_losses >= 0", name="locate_jobs_worker_losses_nonnegative"),
        Index("locate_jobs_scene_idx", "scene_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    scene_id: Mapped[int] = mapped_column(BigId, ForeignKey("scenes.id", ondelete="CASCADE"))
    observer_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id", ondelete="SET NULL"))
    method: Mapped[str] = mapped_column(Text)
    file_id: Mapped[str] = mapped_column(Text, unique=True)
    filename: Mapped[str] = mapped_column(Text, server_default=text("''"), default="")
    content_type: Mapped[str] = mapped_column(Text, server_default=text("''"), default="")
    status: Mapped[str] = mapped_column(Text, server_default=text("'queued'"), default="queued")
    reason: Mapped[str | None] = mapped_column(Text)
    stats: Mapped[dict[str, Any]] = mapped_column(JsonDocument, server_default=text("'{}'"), default=dict)
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"), default=0)
    created_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(Timestamp)
    finished_at: Mapped[datetime | None] = mapped_column(Timestamp)
    heartbeat_at: Mapped[datetime | None] = mapped_column(Timestamp)
    # Counted by the sweep (schema.sql adds it with ALTER TABLE): a second loss fails the job.
    worker_losses: Mapped[int] = mapped_column(Integer, server_default=text("0"), default=0)


class FrameJob(Base):
    __tablename__ = "frame_jobs"
    __table_args__ = (
        CheckConstraint(_in("status", JOB_STATUSES), name="frame_jobs_status_known"),
        CheckConstraint("status <> 'failed' OR reason IS NOT NULL", name="frame_jobs_failed_has_reason"),
        CheckConstraint("progress BETWEEN 0 AND 1", name="frame_jobs_progress_fraction"),
        CheckConstraint("duration_ms IS NULL OR duration_ms > 0", name="frame_jobs_duration_positive"),
        CheckConstraint("attempts >= 0", name="frame_jobs_attempts_nonnegative"),
        CheckConstraint("worker_losses >= 0", name="frame_jobs_worker_losses_nonnegative"),
        Index("frame_jobs_scene_idx", "scene_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    scene_id: Mapped[int] = mapped_column(BigId, ForeignKey("scenes.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id", ondelete="SET NULL"))
    file_id: Mapped[str] = mapped_column(Text, unique=True)
    filename: Mapped[str] = mapped_column(Text, server_default=text("''"), default="")
    content_type: Mapped[str] = mapped_column(Text, server_default=text("''"), default="")
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(Text, server_default=text("'queued'"), default="queued")
    reason: Mapped[str | None] = mapped_column(Text)
    progress: Mapped[float] = mapped_column(Double, server_default=text("0"), default=0.0)
    frame_ids: Mapped[list[int]] = mapped_column(JsonDocument, server_default=text("'[]'"), default=list)
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"), default=0)
    created_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(Timestamp)
    finished_at: Mapped[datetime | None] = mapped_column(Timestamp)
    heartbeat_at: Mapped[datetime | None] = mapped_column(Timestamp)
    # Counted by the sweep (schema.sql adds it with ALTER TABLE): a second loss fails the job.
    worker_losses: Mapped[int] = mapped_column(Integer, server_default=text("0"), default=0)


class Observation(Base):
    __tablename__ = "observations"
    __table_args__ = (
        UniqueConstraint("job_id", "pixel_id", name="observations_job_pixel_key"),
        CheckConstraint(_in("method", METHOD_CODES), name="observations_method_known"),
        CheckConstraint("sigma > 0", name="observations_sigma_positive"),
        CheckConstraint("confidence BETWEEN 0 AND 1", name="observations_confidence_unit"),
        Index("observations_pixel_idx", "pixel_id"),
        CheckConstraint("offset_ms BETWEEN -1000 AND 1000", name="observations_offset_bounded"),
        CheckConstraint("correction_ms BETWEEN -1000 AND 1000", name="observations_correction_bounded"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    job_id: Mapped[int] = mapped_column(BigId, ForeignKey("locate_jobs.id", ondelete="CASCADE"))
    pixel_id: Mapped[int] = mapped_column(BigId, ForeignKey("pixels.id", ondelete="CASCADE"))
    method: Mapped[str] = mapped_column(Text)
    x: Mapped[float] = mapped_column(Double)
    y: Mapped[float] = mapped_column(Double)
    sigma: Mapped[float] = mapped_column(Double)
    x_img: Mapped[float | None] = mapped_column(Double)
    y_img: Mapped[float | None] = mapped_column(Double)
    confidence: Mapped[float] = mapped_column(Double)
    observed_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now(), default=utcnow)
    # Blink only: when the light changed relative to the server clock (ms, positive = late), and
    # the correction the pixel was playing early by then (schema.sql adds these with ALTER TABLE).
    offset_ms: Mapped[float | None] = mapped_column(Double)
    correction_ms: Mapped[float | None] = mapped_column(Double)


class Seat(Base):
    __tablename__ = "seats"
    __table_args__ = (
        UniqueConstraint("scene_id", "section", "row", "seat", name="seats_scene_label_key"),
        CheckConstraint("spacing > 0", name="seats_spacing_positive"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    scene_id: Mapped[int] = mapped_column(BigId, ForeignKey("scenes.id", ondelete="CASCADE"))
    section: Mapped[str] = mapped_column(Text)
    row: Mapped[str] = mapped_column(Text)
    seat: Mapped[str] = mapped_column(Text)
    x: Mapped[float] = mapped_column(Double)
    y: Mapped[float] = mapped_column(Double)
    spacing: Mapped[float] = mapped_column(Double)
    z: Mapped[float | None] = mapped_column(Double)  # phone height at the seat, scene units


class SeatClaim(Base):
    __tablename__ = "seat_claims"
    __table_args__ = (
        UniqueConstraint("pixel_id", name="seat_claims_pixel_key"),
        Index("seat_claims_seat_idx", "seat_id"),
        Index("seat_claims_one_holder_idx", "seat_id", unique=True,
              postgresql_where=text("accepted"), sqlite_where=text("accepted")),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    seat_id: Mapped[int] = mapped_column(BigId, ForeignKey("seats.id", ondelete="CASCADE"))
    pixel_id: Mapped[int] = mapped_column(BigId, ForeignKey("pixels.id", ondelete="CASCADE"))
    accepted: Mapped[bool] = mapped_column(Boolean, server_default=text("false"), default=False)
    conflict: Mapped[bool] = mapped_column(Boolean, server_default=text("false"), default=False)
    claimed_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now(), default=utcnow)

    seat: Mapped[Seat] = relationship()
    pixel: Mapped[Pixel] = relationship()


class Speaker(Base):
    __tablename__ = "speakers"
    __table_args__ = (
        UniqueConstraint("scene_id", "index", name="speakers_scene_index_key"),
        CheckConstraint('"index" >= 0', name="speakers_index_nonnegative"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    scene_id: Mapped[int] = mapped_column(BigId, ForeignKey("scenes.id", ondelete="CASCADE"))
    index: Mapped[int] = mapped_column(Integer)
    x: Mapped[float] = mapped_column(Double)
    y: Mapped[float] = mapped_column(Double)
    z: Mapped[float] = mapped_column(Double, server_default=text("0"), default=0.0)
    delay_ms: Mapped[float] = mapped_column(Double, server_default=text("0"), default=0.0)
