"""Database engine and sessions, and `init_db`, which applies `schema.sql` to PostgreSQL or
creates the embedded SQLite database from the models.

Every wait on PostgreSQL is bounded, so an outage answers 503 in seconds instead of hanging: the
server cancels a statement after `statement_timeout`, and on the client side psycopg2 waits
through :func:`bounded_wait`, which gives up on a connection attempt after the connect timeout
and on any other wait after the statement timeout plus a margin (a frozen server cancels
nothing). A connection given up on is closed and raises :class:`DatabaseTimeout`, an
``OperationalError``."""

from __future__ import annotations

import os
import re
import select
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


# A health check of a pooled connection (SQLAlchemy's pre-ping) gets this long.
PING_TIMEOUT_S = 0.5
# The client waits this much longer than the server's statement_timeout before giving up.
CLIENT_MARGIN_S = 0.5
_local = threading.local()
_DSN_LIMITS = re.compile(r"statement_timeout=(\d+)")
_DSN_CONNECT = re.compile(r"connect_timeout=(\d+(?:\.\d+)?)")
_limits_of_dsn: dict[str, tuple[float, float] | None] = {}


def _limits(dsn: str) -> tuple[float, float] | None:
    """(connect, statement) seconds a connection made with these options waits, or None for a
    connection without a statement_timeout (tools, tests), which waits as long as it takes."""
    limits = _limits_of_dsn.get(dsn, ())
    if limits == ():
        statement, connect = _DSN_LIMITS.search(dsn), _DSN_CONNECT.search(dsn)
        limits = None if statement is None else (
            float(connect.group(1)) if connect else 10.0, int(statement.group(1)) / 1000 + CLIENT_MARGIN_S)
        if len(_limits_of_dsn) < 64:
            _limits_of_dsn[dsn] = limits
    return limits


def bounded_wait(connection) -> None:
    """psycopg2's wait callback: :func:`psycopg2.extras.wait_select`, with a deadline for the
    connections that carry a statement_timeout (see the module docstring)."""
    from psycopg2 import extensions

    limits = _limits(connection.dsn)
    connecting = connection.status not in (extensions.STATUS_READY, extensions.STATUS_BEGIN,
                                           extensions.STATUS_PREPARED)
    limit = None if limits is None else limits[0] if connecting else getattr(_local, "limit_s", limits[1])
    deadline = None if limit is None else time.monotonic() + limit
    while True:
        state = connection.poll()
        if state == extensions.POLL_OK:
            return
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is None or remaining > 0:
            fd = connection.fileno()
            readable, writable = ([fd], []) if state == extensions.POLL_READ else ([], [fd])
            if any(select.select(readable, writable, [], remaining)):
                continue
        _break(connection)
        what = "to a connection attempt" if connecting else "to a statement"
        raise DatabaseTimeout(f"the database did not answer {what} within {limit:g} s")


def _break(connection) -> None:
    """Cut the connection's socket, so psycopg2 sees it broken and the pool drops it. (Closing
    it here would wait for the lock the stalled statement holds.)"""
    import socket

    import psycopg2

    with socket.socket(fileno=os.dup(connection.fileno())) as sock:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:  # already cut
            pass
    try:
        connection.poll()
    except psycopg2.Error:  # expected: psycopg2 now knows the connection is broken
        pass


class DatabaseTimeout(Exception):
    """Replaced by a subclass of psycopg2's OperationalError when psycopg2 is imported."""


def _install_wait_callback() -> None:
    global DatabaseTimeout
    import psycopg2
    from psycopg2 import extensions

    if not issubclass(DatabaseTimeout, psycopg2.OperationalError):
        DatabaseTimeout = type("DatabaseTimeout", (psycopg2.OperationalError,), {
            "__doc__": "PostgreSQL did not answer in time; the connection was closed."})
    extensions.set_wait_callback(bounded_wait)


def _short_pings(engine: Engine) -> None:
    ping = engine.dialect.do_ping

    def do_ping(dbapi_connection) -> bool:
        _local.limit_s = PING_TIMEOUT_S
        try:
            return ping(dbapi_connection)
        finally:
            del _local.limit_s

    engine.dialect.do_ping = do_ping


# The bounds this process's Database was configured with (for the hot paths' own connections).
PROCESS_LIMITS = {"connect_s": 5.0, "statement_s": 5.0}


def bounded_connect_args(connect_s: float, statement_s: float) -> dict:
    """psycopg2 connect arguments that bound every wait (see the module docstring)."""
    _install_wait_callback()
    return {"connect_timeout": max(1, round(connect_s)),
            "options": f"-c statement_timeout={round(statement_s * 1000)}"}


def make_engine(url: str, *, connect_s: float | None = None, statement_s: float | None = None,
                **options) -> Engine:
    """An engine; on PostgreSQL with `statement_s`, every wait is bounded (module docstring)."""
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
    if statement_s is None:
        engine = create_engine(url, pool_pre_ping=True, max_overflow=10, **options)
    else:
        # A request waits at most this long for a pooled connection (then 503), not 30 s.
        options.setdefault("pool_timeout", statement_s)
        connect_args = {**bounded_connect_args(connect_s or 1.0, statement_s), **options.pop("connect_args", {})}
        engine = create_engine(url, pool_pre_ping=True, max_overflow=10, connect_args=connect_args, **options)
        _short_pings(engine)
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
        limits = {"connect_s": config.db_connect_timeout_s, "statement_s": config.db_statement_timeout_s}
        PROCESS_LIMITS.update(limits)
        url = config.effective_database_url
        if url.startswith("sqlite:///"):
            config.instance_path.mkdir(parents=True, exist_ok=True)
        self.engine = make_engine(url, **limits)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.replicas = [Replica(make_engine(u, **limits)) for u in config.read_database_urls]
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
                 statement_timeout_ms: int | None = None):
        self.dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.application_name = application_name
        self.prepared = prepared
        self.statement_timeout_ms = statement_timeout_ms
        self.local = threading.local()

    def cursor(self):
        import psycopg2

        cursor = getattr(self.local, "cursor", None)
        if cursor is None or cursor.closed or cursor.connection.closed:
            # The process's bounds (Database.configure), unless a statement timeout was given.
            statement_s = (PROCESS_LIMITS["statement_s"] if self.statement_timeout_ms is None
                           else self.statement_timeout_ms / 1000)
            connection = psycopg2.connect(self.dsn, application_name=self.application_name,
                                          **bounded_connect_args(PROCESS_LIMITS["connect_s"], statement_s))
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
