"""The pages people open in a browser: the landing page, the pixel phone, the observer's
camera, the operator's dashboard. They are static HTML shells; everything they show comes from the JSON API."""

from __future__ import annotations

from flask import Blueprint, Flask, render_template

from c3s.checkin import page_settings

bp = Blueprint("pages", __name__, template_folder="templates", static_folder="static",
               static_url_path="/assets")

# The pages hold no data, so a cached copy is always safe to show; the API calls are not cached.
_PAGE_HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff",
                 "Referrer-Policy": "same-origin"}


@bp.get("/")
def landing_page():
    """What C3S is, with the way to the operator's dashboard and to a scene."""
    return render_template("landing.html"), 200, _PAGE_HEADERS


@bp.get("/favicon.ico")
def favicon():
    response = bp.send_static_file("favicon.svg")
    response.mimetype = "image/svg+xml"
    return response


@bp.get("/s/<int:scene_id>")
def pixel_page(scene_id: int):
    """A phone joins scene `scene_id` as a pixel: calibration, then the show."""
    return render_template("pixel.html", scene_id=scene_id, checkin=page_settings()), 200, _PAGE_HEADERS


@bp.get("/observe/<int:scene_id>")
def observer_page(scene_id: int):
    """An observer photographs or films the crowd and uploads it to locate the pixels."""
    return render_template("observer.html", scene_id=scene_id), 200, _PAGE_HEADERS


@bp.get("/operator")
def operator_page():
    """The operator's dashboard: scenes, calibration coverage, frames, the show."""
    return render_template("operator.html", checkin=page_settings()), 200, _PAGE_HEADERS


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
