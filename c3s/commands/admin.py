"""`c3s create-admin` and `c3s grant`: the first administrator and the rights of operators and
observers, from the server's shell (the database named by the configuration)."""

from __future__ import annotations

import os
from contextlib import contextmanager

import click

from c3s.config import Config, ConfigError
from c3s.errors import C3SError

STAFF_RIGHTS = ("scene_admin", "observer", "moderator", "admin")


@contextmanager
def _session():
    """A session on the configured database, which gets the schema when it has none yet (the
    embedded database file, or a fresh PostgreSQL database made with `createdb`)."""
    from sqlalchemy import inspect

    from c3s.db import Database, init_db

    try:
        config = Config.from_env()
    except ConfigError as error:
        raise click.UsageError(str(error)) from None
    database = Database()
    database.configure(config)
    try:
        if config.database_url is None or not inspect(database.engine).has_table("users"):
            init_db(database.engine)
        with database.session() as session:
            try:
                yield session
                session.commit()
            except C3SError as error:
                session.rollback()
                raise click.ClickException(error.message) from None
    finally:
        database.dispose()


@click.command("create-admin")
@click.option("--email", required=True, help="the administrator's email (the login)")
def create_admin_command(email: str):
    """Create the administrator account, or make an existing account an administrator.

    The password comes from C3S_ADMIN_PASSWORD, else from a prompt (at least 10 characters).
    Running it again for the same email changes nothing (an existing account keeps its
    password). Exit status 0 when the account is an administrator afterwards.
    """
    from c3s.admins import create_admin

    password = os.environ.get("C3S_ADMIN_PASSWORD")
    if not password:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    with _session() as session:
        result = create_admin(session, email=email, password=password)
        email = result.user.email
    if result.created:
        click.echo(f"administrator {email} created; log in at /operator")
    elif result.granted:
        click.echo(f"{email} existed and is now an administrator (password unchanged)")
    else:
        click.echo(f"{email} is already an administrator (nothing changed)")


@click.command("grant")
@click.option("--email", required=True, help="the account to grant the right to")
@click.option("--permission", required=True, type=click.Choice(STAFF_RIGHTS),
              help="scene_admin: create and run scenes; observer: photograph the crowd to locate "
                   "phones; moderator: exclude phones; admin: grant rights")
@click.option("--scene", "scene_id", type=click.IntRange(min=1), default=None,
              help="limit the right to this scene (default: everywhere; a scene_admin held "
                   "everywhere may create scenes)")
def grant_command(email: str, permission: str, scene_id: int | None):
    """Grant a right to an account that has signed up. Idempotent."""
    from c3s.admins import grant_by_email

    with _session() as session:
        changed = grant_by_email(session, email=email, permission=permission, scene_id=scene_id)
    where = f" in scene {scene_id}" if scene_id else " everywhere"
    click.echo(f"{email} {'now holds' if changed else 'already held'} {permission}{where}")
