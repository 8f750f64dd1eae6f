"""HTTP/1.1 keep-alive for ``c3s serve`` (Werkzeug's threaded server).

Werkzeug answers every request with ``Connection: close``, because Python's ``http.server``
cannot drain a request body the application left unread before reading the next request line.
A request without a body leaves nothing to drain, and those are the ones that matter here: a
phone's clock sync is a burst of ``GET /api/time``, and over fresh connections each sample would
pay for a TCP handshake. So this handler keeps the connection open after bodiless requests and
still closes it after any request that carried a body. After each answer Werkzeug also reads
whatever the client sent next, to discard an unread body: for a bodiless request that would eat
the next request, so such a request sees an empty input stream instead of the socket.
"""

from __future__ import annotations

import io

from werkzeug.serving import WSGIRequestHandler


class KeepAliveRequestHandler(WSGIRequestHandler):
    """Werkzeug's handler, keeping HTTP/1.1 connections open after requests without a body."""

    # An idle connection is closed after this many seconds, so it does not hold its thread forever.
    timeout = 15

    def _bodiless(self) -> bool:
        headers = self.headers
        return (headers is not None and "Transfer-Encoding" not in headers
                and headers.get("Content-Length", "0").strip() == "0")

    def run_wsgi(self) -> None:
        if not self._bodiless():
            return super().run_wsgi()
        rfile, self.rfile = self.rfile, io.BytesIO(b"")
        try:
            return super().run_wsgi()
        finally:
            self.rfile = rfile

    def send_header(self, keyword: str, value: str) -> None:
        if keyword.lower() == "connection" and value.lower() == "close" and self._bodiless():
            return  # keep-alive unless the client asked to close (parse_request saw to that)
        super().send_header(keyword, value)
