"""Keyset pages over HTTP, one way for every list that grows with the crowd: `limit` and `after`
in the query (schemas such as :class:`c3s.web.schemas.SeatMapQuery`), the next page's URL in the
body's `next` (objects) and in an RFC 8288 ``Link: <...>; rel="next"`` header (objects and
arrays alike, so a list body keeps its shape for clients that read only the first page)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from urllib.parse import urlencode

from flask import Response, request

from c3s.keyset import JsonText, encode_cursor


def next_url(list_name: str, key: Sequence | None, limit: int) -> str | None:
    """The URL of the page after the row `key` (None on the last page), keeping the request's
    other query parameters (filters)."""
    if key is None:
        return None
    args = {**request.args.to_dict(flat=True), "limit": str(limit), "after": encode_cursor(list_name, key)}
    return f"{request.script_root}{request.path}?{urlencode(args)}"


def link_headers(url: str | None) -> dict[str, str]:
    return {"Link": f'<{url}>; rel="next"'} if url else {}


def json_page(body: dict, url: str | None) -> Response:
    """`body` with its `next` as a finished JSON response with the `Link` header, for pages of
    plain values, where a schema per row would cost more than the query. Values that are
    :class:`JsonText` (a page the database wrote) go in as they are."""
    members = ",".join(f"{json.dumps(key)}:{value if isinstance(value, JsonText) else _encode(value)}"
                       for key, value in {**body, "next": url}.items())
    response = Response(f"{{{members}}}", mimetype="application/json", headers=link_headers(url))
    response.headers["Cache-Control"] = "no-cache"
    return response


def _encode(value) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False)
