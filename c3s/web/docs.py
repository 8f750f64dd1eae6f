"""The API docs page works offline: Swagger UI's files come from the swagger-ui-bundle-v2 package,
served under /api/docs/assets, instead of a CDN."""

from __future__ import annotations

from pathlib import Path

from apiflask import APIFlask
from flask import send_from_directory

ASSETS = "/api/docs/assets"


def swagger_ui_folder() -> Path:
    """The newest Swagger UI the package holds (5 or later reads OpenAPI 3.1; an older
    swagger-ui-bundle installed over it would otherwise win with 4.x)."""
    import swagger_ui_bundle

    vendor = Path(str(swagger_ui_bundle.swagger_ui_path)).parent
    versions = [(tuple(int(p) for p in d.name.rsplit("-", 1)[1].split(".") if p.isdigit()), d)
                for d in vendor.glob("swagger-ui-*") if d.is_dir()]
    return max(versions)[1] if versions else Path(str(swagger_ui_bundle.swagger_ui_path))


def init_app(app: APIFlask) -> None:
    folder = str(swagger_ui_folder())
    app.config.update(
        SWAGGER_UI_CSS=f"{ASSETS}/swagger-ui.css",
        SWAGGER_UI_BUNDLE_JS=f"{ASSETS}/swagger-ui-bundle.js",
        SWAGGER_UI_STANDALONE_PRESET_JS=f"{ASSETS}/swagger-ui-standalone-preset.js",
        DOCS_FAVICON="/assets/favicon.svg",
    )

    @app.get(f"{ASSETS}/<path:name>")
    @app.doc(hide=True)
    def swagger_ui_asset(name: str):
        return send_from_directory(folder, name, max_age=86400)
