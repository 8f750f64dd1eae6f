"""The JSON API under /api, one blueprint per area."""

from apiflask import APIFlask


def init_app(app: APIFlask) -> None:
    from c3s.web.api import (
        clock,
        frames,
        health,
        jobs,
        live,
        positioning,
        posters,
        rush,
        scenes,
        show,
        sync,
        users,
    )

    for module in (users, scenes, rush, frames, jobs, positioning, posters, show, live, sync, clock,
                   health):
        app.register_blueprint(module.bp, url_prefix="/api")
    show.init_app(app)
    rush.init_app(app)
