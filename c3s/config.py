"""Settings, read once from the environment with typed parsing.

Every setting has an embedded default so `c3s serve` works on a machine with no database
servers: SQLite in the instance folder, files on disk, tasks run in process. Setting
`C3S_DATABASE_URL`, `C3S_MONGO_URL`, `C3S_REDIS_URL` and `C3S_BROKER_URL` switches to the real
services. A bad value stops start-up with a `ConfigError` that names the variable.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from urllib.parse import urlsplit

TOKEN_KEY_FILE = "token.key"


class ConfigError(ValueError):
    """A setting in the environment has a value C3S cannot use."""


def _parse_int(name: str, raw: str, *, minimum: int = 0) -> int:
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _parse_seconds(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not value >= 0:
        raise ConfigError(f"{name} must not be negative, got {raw!r}")
    return value


def _parse_bool(name: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _parse_url(name: str, raw: str, schemes: tuple[str, ...]) -> str:
    scheme = urlsplit(raw).scheme.split("+")[0]
    if scheme not in schemes:
        raise ConfigError(f"{name} must be a URL starting with one of {', '.join(schemes)}, got {raw!r}")
    return raw


@dataclass(frozen=True)
class Config:
    """All settings of one C3S process (API, worker or command)."""

    instance_path: Path = field(default_factory=lambda: Path("instance").resolve())
    database_url: str | None = None
    read_database_urls: tuple[str, ...] = ()
    replica_max_lag_s: float = 5.0
    mongo_url: str | None = None
    mongo_write_concern: str = "majority"
    redis_url: str | None = None
    broker_url: str | None = None
    # Prepended to every broker key, so several deployments (or test runs) can share one Redis.
    broker_key_prefix: str = ""
    secret_key: str = field(default_factory=lambda: secrets.token_hex(32))
    # The key of the API tokens' keyed hash (see c3s.accounts); None: a key kept in the instance
    # folder (TOKEN_KEY_FILE), which every process on this machine shares. Several API hosts
    # must share C3S_TOKEN_KEY.
    token_key: str | None = None
    max_upload_bytes: int = 200 * 1024 * 1024
    max_image_pixels: int = 50_000_000
    token_ttl_s: int = 30 * 24 * 3600
    device_token_ttl_s: int = 365 * 24 * 3600
    # A running job's worker stamps its heartbeat this often; the sweep (every sweep_interval_s)
    # re-queues a running job whose heartbeat is older than job_heartbeat_timeout_s.
    job_heartbeat_s: float = 10.0
    job_heartbeat_timeout_s: float = 60.0
    sweep_interval_s: float = 30.0
    testing: bool = False
    # Rate limits (c3s/limits.py), per minute. Per address: a carrier's NAT puts a stadium's
    # phones behind a few addresses, so guests and joins allow a stand's worth.
    rate_login_failures_per_account: int = 10
    rate_logins_per_address: int = 120
    rate_registrations_per_address: int = 30
    rate_guests_per_address: int = 60_000
    rate_joins_per_address: int = 60_000
    rate_uploads_per_user: int = 120
    # Password hashing (c3s/accounts.py): Argon2id lanes, and hashes at once per process (0: any).
    password_hash_lanes: int = 1
    password_hash_slots: int = 1
    # Bounds on every wait for PostgreSQL (c3s/db.py): an outage answers 503 within seconds.
    db_connect_timeout_s: float = 1.0
    db_statement_timeout_s: float = 2.0
    # Workers run long statements (a stadium's fusion); they get this statement timeout instead.
    worker_db_statement_timeout_s: float = 300.0

    def __post_init__(self) -> None:
        if not (self.job_heartbeat_s > 0 and self.sweep_interval_s > 0):
            raise ConfigError("C3S_JOB_HEARTBEAT_S and C3S_SWEEP_INTERVAL_S must be more than 0")
        if self.job_heartbeat_timeout_s < 2 * self.job_heartbeat_s:
            raise ConfigError("C3S_JOB_HEARTBEAT_TIMEOUT_S must be at least twice C3S_JOB_HEARTBEAT_S, "
                              "or a busy worker's jobs are taken for dead")

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.instance_path / 'c3s.sqlite3'}"

    @property
    def is_embedded(self) -> bool:
        """True when tasks run in this process because no broker is configured."""
        return self.broker_url is None

    def token_key_bytes(self) -> bytes:
        """The token key: C3S_TOKEN_KEY, or the instance folder's key file (made on first use)."""
        if self.token_key:
            return self.token_key.encode("utf-8")
        path = self.instance_path / TOKEN_KEY_FILE
        if not path.exists():
            self.instance_path.mkdir(parents=True, exist_ok=True)
            try:
                descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another process made it first: use theirs
                pass
            else:
                with os.fdopen(descriptor, "w") as handle:
                    handle.write(secrets.token_hex(32) + "\n")
        for _ in range(50):  # the process that made the file may not have written it yet
            key = path.read_text().strip()
            if key:
                return key.encode("utf-8")
            time.sleep(0.01)
        raise ConfigError(f"the token key file {path} is empty; delete it or set C3S_TOKEN_KEY")

    @property
    def files_path(self) -> Path:
        return self.instance_path / "files"

    def with_overrides(self, overrides: Mapping[str, object]) -> Config:
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise ConfigError(f"unknown settings: {', '.join(sorted(unknown))}")
        return replace(self, **overrides)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Config:
        env = os.environ if environ is None else environ
        values = {
            key: parse(name, env[name]) for name, key, parse in _SETTINGS if env.get(name)
        }
        return cls(**values)


def _write_concern(name: str, raw: str) -> str:
    if raw != "majority" and not (raw.isdigit() and int(raw) >= 1):
        raise ConfigError(f"{name} must be 'majority' or a number of at least 1, got {raw!r}")
    return raw


def _secret(name: str, raw: str) -> str:
    if len(raw) < 16:
        raise ConfigError(f"{name} must be at least 16 characters long")
    return raw


def _mongo_url(name: str, raw: str) -> str:
    from c3s.mongo import check_mongo_url

    url = _parse_url(name, raw, ("mongodb", "mongodb+srv"))
    try:
        check_mongo_url(url)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    return url


def _url_list(name: str, raw: str) -> tuple[str, ...]:
    return tuple(_parse_url(name, url.strip(), ("postgresql",)) for url in raw.split(",") if url.strip())


def _int_at_least(minimum: int):
    return lambda name, raw: _parse_int(name, raw, minimum=minimum)


_REDIS_SCHEMES = ("redis", "rediss", "amqp", "memory")

# (environment variable, Config field, parser taking (name, raw value)).
_SETTINGS = (
    ("C3S_INSTANCE_PATH", "instance_path", lambda _name, raw: Path(raw).resolve()),
    ("C3S_DATABASE_URL", "database_url", lambda name, raw: _parse_url(name, raw, ("postgresql", "sqlite"))),
    ("C3S_READ_DATABASE_URLS", "read_database_urls", _url_list),
    ("C3S_REPLICA_MAX_LAG_S", "replica_max_lag_s", lambda name, raw: _parse_seconds(name, raw)),
    ("C3S_MONGO_URL", "mongo_url", lambda name, raw: _mongo_url(name, raw)),
    ("C3S_MONGO_WRITE_CONCERN", "mongo_write_concern", _write_concern),
    ("C3S_REDIS_URL", "redis_url", lambda name, raw: _parse_url(name, raw, _REDIS_SCHEMES)),
    ("C3S_BROKER_URL", "broker_url", lambda name, raw: _parse_url(name, raw, _REDIS_SCHEMES)),
    ("C3S_BROKER_KEY_PREFIX", "broker_key_prefix", lambda _name, raw: raw),
    ("C3S_SECRET_KEY", "secret_key", _secret),
    ("C3S_TOKEN_KEY", "token_key", _secret),
    ("C3S_MAX_UPLOAD_BYTES", "max_upload_bytes", _int_at_least(1024)),
    ("C3S_MAX_IMAGE_PIXELS", "max_image_pixels", _int_at_least(64 * 64)),
    ("C3S_TOKEN_TTL_S", "token_ttl_s", _int_at_least(60)),
    ("C3S_DEVICE_TOKEN_TTL_S", "device_token_ttl_s", _int_at_least(60)),
    ("C3S_TESTING", "testing", _parse_bool),
    ("C3S_RATE_LOGIN_FAILURES_PER_ACCOUNT", "rate_login_failures_per_account", _int_at_least(1)),
    ("C3S_RATE_LOGINS_PER_ADDRESS", "rate_logins_per_address", _int_at_least(1)),
    ("C3S_RATE_REGISTRATIONS_PER_ADDRESS", "rate_registrations_per_address", _int_at_least(1)),
    ("C3S_RATE_GUESTS_PER_ADDRESS", "rate_guests_per_address", _int_at_least(1)),
    ("C3S_RATE_JOINS_PER_ADDRESS", "rate_joins_per_address", _int_at_least(1)),
    ("C3S_RATE_UPLOADS_PER_USER", "rate_uploads_per_user", _int_at_least(1)),
    ("C3S_PASSWORD_HASH_LANES", "password_hash_lanes", _int_at_least(1)),
    ("C3S_PASSWORD_HASH_SLOTS", "password_hash_slots", _int_at_least(0)),
    ("C3S_DB_CONNECT_TIMEOUT_S", "db_connect_timeout_s", lambda name, raw: _parse_seconds(name, raw)),
    ("C3S_DB_STATEMENT_TIMEOUT_S", "db_statement_timeout_s", lambda name, raw: _parse_seconds(name, raw)),
    ("C3S_WORKER_DB_STATEMENT_TIMEOUT_S", "worker_db_statement_timeout_s",
     lambda name, raw: _parse_seconds(name, raw)),
    ("C3S_JOB_HEARTBEAT_S", "job_heartbeat_s", lambda name, raw: _parse_seconds(name, raw)),
    ("C3S_JOB_HEARTBEAT_TIMEOUT_S", "job_heartbeat_timeout_s", lambda name, raw: _parse_seconds(name, raw)),
    ("C3S_SWEEP_INTERVAL_S", "sweep_interval_s", lambda name, raw: _parse_seconds(name, raw)),
)
