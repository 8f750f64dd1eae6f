"""Database engine and sessions, and `init_db`, which applies `schema.sql` to PostgreSQL or
creates the embedded SQLite database from the models."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from c3s.config import Config
from c3s.models import Base


def schema_sql() -> str:
    return resources.files("c3s").joinpath("schema.sql").read_text(encoding="utf-8")


def seed_statements(sql: str) -> list[str]:
    """The schema's INSERT statements (permissions, methods); SQLite accepts them as written."""
    statements = [s.strip() for s in re.split(r";\s*\n", sql) if s.strip()]
    return [s for s in statements if s.upper().startswith("INSERT")]


def driver_url(url: str) -> str:
    """SQLAlchemy 2.1 maps a bare `postgresql://` to psycopg 3; C3S ships psycopg2."""
    return re.sub(r"^postgres(ql)?://", "postgresql+psycopg2://", url)


def make_engine(url: str, **options) -> Engine:
    url = driver_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False}, **options)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA busy_timeout = 10000")
            cursor.close()

        return engine
    options.setdefault("pool_size", 5)
    # Batched UPDATEs: fusing a clip's 10,000 pixels is one round trip per page, not per row.
    options.setdefault("executemany_mode", "values_plus_batch")
    engine = create_engine(url, pool_pre_ping=True, max_overflow=10, **options)
    refuse_unreplicated_commits(engine)
    return engine


# What PostgreSQL says when a commit's wait for a synchronous standby is cancelled (a cancel
# request, e.g. pg_cancel_backend on writes stuck while no standby answers; statement_timeout
# does not end the wait): the row is committed on the primary only, yet COMMIT reports success.
UNREPLICATED_COMMIT = "canceling wait for synchronous replication"


def refuse_unreplicated_commits(engine: Engine) -> None:
    """Make a commit that no synchronous standby confirmed raise instead of succeed.

    Such a commit is lost if the primary fails before a standby catches up, so it must not be
    acknowledged: it raises `OperationalError`, which the client hears as "unavailable"."""
    import psycopg2

    commit = engine.dialect.do_commit

    def do_commit(dbapi_connection) -> None:
        notices = dbapi_connection.notices
        del notices[:]
        commit(dbapi_connection)
        if any(UNREPLICATED_COMMIT in notice for notice in notices):
            raise psycopg2.OperationalError(
                "the commit was not confirmed by a synchronous standby in time; "
                "it may be lost on failover")

    engine.dialect.do_commit = do_commit


# How far behind the primary a standby is, in seconds (0 when it has replayed all it received;
# a promoted standby is a primary and never behind).
REPLICA_LAG_SQL = """
SELECT CASE
    WHEN NOT pg_is_in_recovery() THEN 0
    WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
    ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 1e9)
END
"""
REPLICA_CHECK_INTERVAL_S = 1.0


@dataclass
class Replica:
    """A read-only standby and what we last learnt of its health."""

    engine: Engine
    healthy: bool = False
    lag_s: float = float("inf")
    checked_at: float = float("-inf")


class Database:
    """Holds the engines and session factories of one process, bound from a `Config`.

    Writes always go to the primary (`session`). Read-only work (`read_session`) goes to a
    standby when one is configured, answers and lags less than `replica_max_lag_s`; otherwise
    to the primary. A multi-host primary URL with `target_session_attrs=read-write` follows a
    promoted standby after failover."""

    def __init__(self) -> None:
        self.engine: Engine | None = None
        self.sessions: sessionmaker[Session] | None = None
        self.replicas: list[Replica] = []
        self.max_lag_s = 5.0
        self._next_replica = 0
        self._lock = threading.Lock()

    def configure(self, config: Config) -> None:
        self.dispose()
        url = config.effective_database_url
        if url.startswith("sqlite:///"):
            config.instance_path.mkdir(parents=True, exist_ok=True)
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.replicas = [Replica(make_engine(u, connect_args={"connect_timeout": 2}))
                         for u in config.read_database_urls]
        self.max_lag_s = config.replica_max_lag_s

    def dispose(self) -> None:
        for engine in [self.engine, *(r.engine for r in self.replicas)]:
            if engine is not None:
                engine.dispose()

    def session(self) -> Session:
        if self.sessions is None:
            raise RuntimeError("the database is not configured; call Database.configure first")
        return self.sessions()

    def read_session(self) -> Session:
        """A session for read-only work: on a fresh-enough standby when there is one."""
        replica = self._pick_replica()
        if replica is None:
            return self.session()
        return Session(replica.engine, expire_on_commit=False)

    def _pick_replica(self) -> Replica | None:
        with self._lock:
            count = len(self.replicas)
            for offset in range(count):
                replica = self.replicas[(self._next_replica + offset) % count]
                if self._usable(replica):
                    self._next_replica = (self._next_replica + offset + 1) % count
                    return replica
        return None

    def _usable(self, replica: Replica) -> bool:
        now = time.monotonic()
        if now - replica.checked_at >= REPLICA_CHECK_INTERVAL_S:
            replica.checked_at = now
            try:
                with replica.engine.connect() as connection:
                    replica.lag_s = float(connection.execute(text(REPLICA_LAG_SQL)).scalar())
                replica.healthy = True
            except Exception:  # noqa: BLE001 - a standby that fails to answer is skipped
                replica.healthy, replica.lag_s = False, float("inf")
        return replica.healthy and replica.lag_s <= self.max_lag_s

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on any error."""
        with self.session() as session, session.begin():
            yield session

    def ping(self) -> bool:
        if self.engine is None:
            return False
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception:  # noqa: BLE001 - health check: any failure means "does not answer"
            return False
        return True


class ThreadConnections:
    """One autocommit psycopg2 connection per thread, made on first use with ``prepared``
    (name -> (argument types, SQL)) prepared on it: a hot path's statement is then one round
    trip with no pool checkout, no transaction block and no planning."""

    def __init__(self, url, *, application_name: str, prepared: dict[str, tuple[str, str]],
                 statement_timeout_ms: int = 5000):
        self.dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.application_name = application_name
        self.prepared = prepared
        self.options = f"-c statement_timeout={statement_timeout_ms}"
        self.local = threading.local()

    def cursor(self):
        import psycopg2

        cursor = getattr(self.local, "cursor", None)
        if cursor is None or cursor.closed or cursor.connection.closed:
            connection = psycopg2.connect(self.dsn, application_name=self.application_name, connect_timeout=5,
                                          options=self.options)
            connection.autocommit = True
            cursor = connection.cursor()
            for name, (types, sql) in self.prepared.items():
                cursor.execute(f"PREPARE {name} ({types}) AS {sql}")
            self.local.cursor = cursor
        return cursor

    def drop(self) -> None:
        """Forget this thread's connection (it broke); the next use connects again."""
        cursor = getattr(self.local, "cursor", None)
        self.local.cursor = None
        if cursor is not None:
            try:
                cursor.connection.close()
            except Exception:  # noqa: BLE001, S110 - closing a broken connection may fail too
                pass


def init_db(engine: Engine) -> None:
    """Create every table and seed row. Idempotent: safe on a live database."""
    sql = schema_sql()
    if engine.dialect.name == "postgresql":
        raw = engine.raw_connection()
        try:
            with raw.cursor() as cursor:
                cursor.execute(sql)
            raw.commit()
        finally:
            raw.close()
        return
    Base.metadata.create_all(engine)
    with engine.begin() as connection:
        for statement in seed_statements(sql):
            connection.exec_driver_sql(statement)
