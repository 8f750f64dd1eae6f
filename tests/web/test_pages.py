"""The landing page, the favicon and the API docs served with local Swagger UI files."""

from __future__ import annotations


def test_landing_page_says_what_this_is_and_links_the_pages(client):
    page = client.get("/")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "giant screen" in html and 'href="/operator"' in html
    assert "/observe/" in html and "/s/" in html and "c3s create-admin" in html
    assert 'rel="icon"' in html


def test_favicon(client):
    with client.get("/favicon.ico") as icon:
        assert icon.status_code == 200 and icon.mimetype == "image/svg+xml"
        assert icon.data.startswith(b"<svg")


def test_api_docs_load_swagger_ui_from_this_server(client):
    docs = client.get("/api/docs")
    assert docs.status_code == 200
    html = docs.get_data(as_text=True)
    assert "cdn." not in html and "//unpkg" not in html
    for asset in ("swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js"):
        assert f"/api/docs/assets/{asset}" in html
        with client.get(f"/api/docs/assets/{asset}") as served:
            assert served.status_code == 200 and len(served.data) > 1000
    assert client.get("/api/docs/assets/../../setup.cfg").status_code == 404
