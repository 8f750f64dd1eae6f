"""Database engine and sessions, and `init_db`, which applies `schema.sql` to PostgreSQL or
creates the embedded SQLite database from the models."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
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
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10, **options)


class Database:
    """Holds the engine and session factory of one process, bound from a `Config`."""

    def __init__(self) -> None:
        self.engine: Engine | None = None
        self.sessions: sessionmaker[Session] | None = None

    def configure(self, config: Config) -> None:
        if self.engine is not None:
            self.engine.dispose()
        url = config.effective_database_url
        if url.startswith("sqlite:///"):
            config.instance_path.mkdir(parents=True, exist_ok=True)
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    def session(self) -> Session:
        if self.sessions is None:
            raise RuntimeError("the database is not configured; call Database.configure first")
        return self.sessions()

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


db = Database()
