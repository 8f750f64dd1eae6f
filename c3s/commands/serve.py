"""`c3s serve`: run the API. Without configuration it uses the embedded default (SQLite, files on
disk, tasks in process) and creates the database on first start."""

import click

from c3s.config import Config, ConfigError


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="gunicorn worker processes, threaded, keep-alive (1 runs Flask's threaded HTTP/1.1 server)")
def serve_command(host: str, port: int, workers: int):
    """Serve the C3S API and pages."""
    try:
        config = Config.from_env()
    except ConfigError as error:
        raise click.UsageError(str(error)) from None
    from c3s.db import init_db
    from c3s.web import create_app

    app = create_app(config)
    if config.database_url is None:
        init_db(app.extensions["c3s"].database.engine)
    click.echo(f"C3S on http://{host}:{port}/ — database {config.effective_database_url}, "
               f"files {'MongoDB GridFS' if config.mongo_url else config.files_path}")
    if workers == 1:
        from c3s.web.serving import KeepAliveRequestHandler

        app.run(host=host, port=port, threaded=True, request_handler=KeepAliveRequestHandler)
        return
    import sys

    from gunicorn.app.wsgiapp import run as gunicorn_run

    sys.argv = ["gunicorn", "-w", str(workers), "-b", f"{host}:{port}", "-c", "python:c3s.web.gunicorn_conf",
                "c3s.web.wsgi:app"]
    gunicorn_run()
