"""The API docs page works offline: Swagger UI's files come from the swagger-ui-bundle-v2 package,
served under /api/docs/assets, instead of a CDN."""

from __future__ import annotations

from apiflask import APIFlask
from flask import send_from_directory

ASSETS = "/api/docs/assets"


def init_app(app: APIFlask) -> None:
    import swagger_ui_bundle

    folder = str(swagger_ui_bundle.swagger_ui_path)  # Swagger UI 5: it reads OpenAPI 3.1
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
