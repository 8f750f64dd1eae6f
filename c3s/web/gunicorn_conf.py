"""How gunicorn serves the C3S API: ``gunicorn -c python:c3s.web.gunicorn_conf c3s.web.wsgi:app``
(the systemd unit, the Procfile and ``c3s serve --workers N`` all load this module).

Threaded workers with HTTP keep-alive: a phone's clock sync is a burst of ``GET /api/time`` round
trips, and each one over a fresh connection would pay for a TCP handshake (a whole round trip on a
stadium network) and wait behind it. gunicorn's default ``sync`` worker answers every request with
``Connection: close``; ``gthread`` keeps idle connections in its poller without holding a thread.
Workers and the address stay on the command line (``C3S_API_WORKERS``, ``C3S_API_BIND``).
"""

import os


def _positive_int(name: str, default: int) -> int:
    text = os.environ.get(name, str(default))
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise SystemExit(f"{name} must be a whole number of at least 1, not {text!r}")
    return value


worker_class = "gthread"
threads = _positive_int("C3S_API_THREADS", 4)
# Seconds an idle connection stays open: longer than a clock sync's gaps and a phone's poll, so a
# phone's requests share one connection; behind a load balancer, set it above the balancer's idle
# timeout (C3S_API_KEEPALIVE_S).
keepalive = _positive_int("C3S_API_KEEPALIVE_S", 15)
