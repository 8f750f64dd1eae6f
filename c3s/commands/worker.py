"""`c3s worker`: a Celery worker bound to the configured database, file store and broker."""

import click

from c3s.tasks import LOCATE_QUEUE, SHOW_QUEUE


@click.command("worker", context_settings={"ignore_unknown_options": True})
@click.option("--queues", "-Q", default=f"{LOCATE_QUEUE},{SHOW_QUEUE}", show_default=True,
              help="comma-separated queues to consume (separate pools keep the show responsive)")
@click.option("--concurrency", "-c", type=click.IntRange(1, 256), default=None,
              help="worker processes (default: one per core)")
@click.option("--loglevel", "-l", default="info", show_default=True)
@click.option("--beat", is_flag=True, help="also run the periodic sweep of lost jobs (in exactly one worker)")
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def worker_command(queues: str, concurrency: int | None, loglevel: str, beat: bool,
                   celery_args: tuple[str, ...]):
    """Run a worker; needs C3S_BROKER_URL (without it, tasks run inside the API process)."""
    from c3s.worker import celery_app

    if celery_app.conf.task_always_eager:
        raise click.UsageError("C3S_BROKER_URL is not set: there is no queue to consume")
    argv = ["worker", "-Q", queues, "-l", loglevel, *celery_args]
    if concurrency:
        argv += ["-c", str(concurrency)]
    if beat:
        from c3s.worker import flask_app

        schedule = flask_app.config["C3S"].instance_path / "celerybeat-schedule"
        schedule.parent.mkdir(parents=True, exist_ok=True)
        argv += ["-B", "-s", str(schedule)]
    celery_app.worker_main(argv)
