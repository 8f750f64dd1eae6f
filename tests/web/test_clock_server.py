"""The server side of the clock: keep-alive on `c3s serve`'s handler, and /api/time stamped as
its bytes are written."""

from __future__ import annotations

import http.client
import json
import time

import pytest

from c3s.bench.clock import serve_in_thread
from c3s.config import Config
from c3s.web import create_app
from c3s.web.serving import KeepAliveRequestHandler


@pytest.fixture(scope="module")
def embedded_app(tmp_path_factory):
    return create_app(Config(instance_path=tmp_path_factory.mktemp("clock-server")))


def test_bodiless_requests_share_one_connection_and_a_body_closes_it(embedded_app):
    with serve_in_thread(embedded_app, KeepAliveRequestHandler) as port:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        sockets = set()
        for t0 in (1, 2, 3):
            connection.request("GET", f"/api/time?t0={t0}")
            response = connection.getresponse()
            assert response.getheader("Connection") is None and json.loads(response.read())["t0"] == t0
            sockets.add(connection.sock.getsockname())
        assert len(sockets) == 1
        # A request with a body the app does not read: the connection closes, and the bytes
        # that follow are never mistaken for a request.
        connection.request("POST", "/api/time", body=b"GET /api/time HTTP/1.1\r\n\r\n")
        response = connection.getresponse()
        assert response.status == 405 and response.getheader("Connection") == "close"
        response.read()
        connection.request("GET", "/api/time?t0=4")
        assert json.loads(connection.getresponse().read())["t0"] == 4
        connection.close()


def test_the_time_is_stamped_when_the_body_is_written(embedded_app):
    """The fast path renders /api/time's body when the server asks for it: a server that
    writes 50 ms after the app returned gets a stamp 50 ms later, and the same length."""
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/api/time", "QUERY_STRING": "t0=12.5",
               "SERVER_NAME": "test", "SERVER_PORT": "80", "wsgi.url_scheme": "http"}
    started = {}
    body_iter = embedded_app.wsgi_app(environ, lambda status, headers: started.update(status=status,
                                                                                      headers=dict(headers)))
    time.sleep(0.05)
    body = b"".join(body_iter)
    answer = json.loads(body)
    assert started["status"].startswith("200") and int(started["headers"]["Content-Length"]) == len(body)
    assert answer["t0"] == 12.5 and answer["server_ms"] - answer["received_ms"] >= 49.0
    assert started["headers"]["Timing-Allow-Origin"] == "*"


def test_gunicorn_as_configured_for_production_keeps_connections_alive(tmp_path):
    """The systemd unit, the Procfile and `c3s serve --workers N` load c3s.web.gunicorn_conf:
    gthread workers that keep a phone's clock samples on one connection (gunicorn's default
    sync worker closes every connection)."""
    from c3s.bench.clock import gunicorn_server

    with gunicorn_server(tmp_path) as port:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        sockets = set()
        for _ in range(3):
            connection.request("GET", "/api/time")
            response = connection.getresponse()
            assert response.status == 200 and response.getheader("Connection", "").lower() != "close"
            response.read()
            sockets.add(connection.sock.getsockname())
        connection.close()
    assert len(sockets) == 1
    assert "gthread" in (tmp_path / "gunicorn.log").read_text()
