"""schema.sql (the PostgreSQL truth) and the SQLAlchemy models must describe the same database."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import IntegrityError

from c3s.db import init_db, make_engine
from c3s.models import Base

_PG_DIALECT = make_engine("postgresql://localhost/x").dialect


def _sql_type(sqltype) -> str:
    """The type as PostgreSQL spells it, e.g. BIGINT, DOUBLE PRECISION, TIMESTAMP WITH TIME ZONE."""
    return sqltype.compile(dialect=_PG_DIALECT).upper()


def test_schema_and_models_agree(pg_engine):
    inspector = inspect(pg_engine)
    assert set(inspector.get_table_names()) == set(Base.metadata.tables)
    for name, table in Base.metadata.tables.items():
        db_columns = {c["name"]: c for c in inspector.get_columns(name)}
        assert set(db_columns) == {c.name for c in table.columns}, name
        for column in table.columns:
            reflected = db_columns[column.name]
            where = f"{name}.{column.name}"
            assert reflected["nullable"] == column.nullable, where
            assert _sql_type(reflected["type"]) == _sql_type(column.type), where
        db_fks = {
            (tuple(fk["constrained_columns"]), fk["referred_table"], tuple(fk["referred_columns"]),
             (fk["options"].get("ondelete") or "NO ACTION").upper())
            for fk in inspector.get_foreign_keys(name)
        }
        model_fks = {
            (tuple(c.name for c in fk.columns), fk.referred_table.name,
             tuple(e.column.name for e in fk.elements), (fk.ondelete or "NO ACTION").upper())
            for fk in table.foreign_key_constraints
        }
        assert db_fks == model_fks, name
        db_uniques = {tuple(u["column_names"]) for u in inspector.get_unique_constraints(name)}
        model_uniques = {
            tuple(c.name for c in u.columns)
            for u in table.constraints if u.__class__.__name__ == "UniqueConstraint"
        } | {(c.name,) for c in table.columns if c.unique}
        assert db_uniques == model_uniques, name


def test_init_db_is_idempotent_and_seeds(pg_engine):
    init_db(pg_engine)
    with pg_engine.connect() as connection:
        permissions = connection.execute(text("SELECT name FROM permissions ORDER BY name")).scalars().all()
        methods = connection.execute(text("SELECT code FROM methods ORDER BY code")).scalars().all()
    assert permissions == ["admin", "moderator", "observer", "pixel", "scene_admin"]
    assert methods == ["blink", "gps", "qr", "seat", "sound"]


def test_embedded_sqlite_gets_the_same_tables_and_seeds(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'c3s.sqlite3'}")
    init_db(engine)
    init_db(engine)
    assert set(inspect(engine).get_table_names()) == set(Base.metadata.tables)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM methods")).scalar() == 5
    engine.dispose()


@pytest.fixture()
def scene_row(clean_db):
    with clean_db.begin() as c:
        c.execute(text("INSERT INTO users (email, password_hash) VALUES ('o@x.org', 'h')"))
        c.execute(text(
            "INSERT INTO scenes (name, owner_id, method_id, width, height) "
            "SELECT 'Stand A', 1, id, 100, 50 FROM methods WHERE code = 'qr'"
        ))
        c.execute(text("INSERT INTO users (is_guest) VALUES (true)"))
    return clean_db


@pytest.mark.parametrize("statement", [
    # a pixel outside the scene
    "INSERT INTO pixels (scene_id, scene_width, scene_height, user_id, number, x, y, located_by, located_at)"
    " VALUES (1, 100, 50, 2, 0, 101, 10, 'qr', now())",
    # half a position
    "INSERT INTO pixels (scene_id, scene_width, scene_height, user_id, number, x)"
    " VALUES (1, 100, 50, 2, 0, 10)",
    # a pixel row that lies about its scene's size
    "INSERT INTO pixels (scene_id, scene_width, scene_height, user_id, number) VALUES (1, 200, 50, 2, 0)",
    # zero duration
    "INSERT INTO frames (scene_id, position, duration_ms, file_id, width, height) VALUES (1, 0, 0, 'f', 1, 1)",
    # a registered user without a password
    "INSERT INTO users (email) VALUES ('a@x.org')",
    # a scene of no size
    "INSERT INTO scenes (name, owner_id, method_id, width, height) VALUES ('x', 1, 1, 0, 5)",
    # a failed job with no reason
    "INSERT INTO locate_jobs (scene_id, method, file_id, status) VALUES (1, 'qr', 'f', 'failed')",
])
def test_constraints_refuse_bad_rows(scene_row, statement):
    with pytest.raises(IntegrityError), scene_row.begin() as c:
        c.execute(text(statement))


def test_unique_keys_and_cascades(scene_row):
    insert = ("INSERT INTO pixels (scene_id, scene_width, scene_height, user_id, number)"
              " VALUES (1, 100, 50, :user, :number)")
    with scene_row.begin() as c:
        c.execute(text(insert), {"user": 2, "number": 0})
    with pytest.raises(IntegrityError), scene_row.begin() as c:  # a user joins a scene once
        c.execute(text(insert), {"user": 2, "number": 1})
    with pytest.raises(IntegrityError), scene_row.begin() as c:  # numbers are unique per scene
        c.execute(text(insert), {"user": 1, "number": 0})
    with scene_row.begin() as c:
        # shrinking the scene below a located pixel is refused through the cascaded size
        c.execute(text("UPDATE pixels SET x = 90, y = 40, located_by = 'qr', located_at = now()"))
    with pytest.raises(IntegrityError), scene_row.begin() as c:
        c.execute(text("UPDATE scenes SET width = 80 WHERE id = 1"))
    with scene_row.begin() as c:
        c.execute(text("UPDATE scenes SET width = 120 WHERE id = 1"))
        assert c.execute(text("SELECT scene_width FROM pixels")).scalar() == 120
        c.execute(text("DELETE FROM scenes WHERE id = 1"))
        assert c.execute(text("SELECT count(*) FROM pixels")).scalar() == 0
    with pytest.raises(IntegrityError), scene_row.begin() as c:  # owners cannot vanish under a scene
        c.execute(text(
            "INSERT INTO scenes (name, owner_id, method_id, width, height) VALUES ('B', 1, 1, 5, 5)"))
        c.execute(text("DELETE FROM users WHERE id = 1"))


def test_schema_loads_into_a_fresh_database_from_the_file(pg_url):
    # The fixture already applied schema.sql; a second engine sees the same result.
    engine = create_engine(pg_url.replace("postgresql://", "postgresql+psycopg2://"))
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM pg_tables WHERE schemaname='public'")).scalar() == len(
            Base.metadata.tables)
    engine.dispose()


def test_init_db_gives_an_older_database_the_worker_loss_counts(scene_row):
    # A database from before jobs counted their lost workers, with a job in it.
    with scene_row.begin() as c:
        c.execute(text("ALTER TABLE locate_jobs DROP COLUMN worker_losses"))
        c.execute(text("ALTER TABLE frame_jobs DROP COLUMN worker_losses"))
        c.execute(text("INSERT INTO locate_jobs (scene_id, method, file_id, status, attempts) "
                       "VALUES (1, 'qr', 'f', 'running', 3)"))
    init_db(scene_row)
    with scene_row.connect() as c:
        assert c.execute(text("SELECT attempts, worker_losses FROM locate_jobs")).one() == (3, 0)
    for statement in ("UPDATE locate_jobs SET worker_losses = -1",
                      "INSERT INTO frame_jobs (scene_id, file_id, worker_losses) VALUES (1, 'v', -1)"):
        with pytest.raises(IntegrityError), scene_row.begin() as c:
            c.execute(text(statement))
