"""`c3s init-db`: create the database schema (PostgreSQL from schema.sql, or embedded SQLite)."""

import click

from c3s.config import Config
from c3s.db import init_db, make_engine


@click.command("init-db")
def init_db_command():
    """Create the tables and seed rows; safe to run again on a live database."""
    config = Config.from_env()
    url = config.effective_database_url
    if url.startswith("sqlite:///"):
        config.instance_path.mkdir(parents=True, exist_ok=True)
    engine = make_engine(url)
    try:
        init_db(engine)
    finally:
        engine.dispose()
    click.echo(f"database ready: {engine.url.render_as_string(hide_password=True)}")
