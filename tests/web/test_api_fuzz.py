"""The OpenAPI document, fuzzed by schemathesis' own engine (the one `schemathesis run --checks all`
drives) against the API on real PostgreSQL and Redis, in process: every check on every answer of
the coverage, fuzzing and stateful phases, positive and negative data. No generated request gets
a 5xx, no answer breaks the document (status, content type, headers, body), and the API accepts
what the document calls valid and refuses what it calls invalid."""

from __future__ import annotations

import threading
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import events
from schemathesis.engine import from_schema as engine_for
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

from tests.helpers import fuzz_hooks  # noqa: F401  (registers the filter of scene bodies)
from tests.helpers.factories import auth, make_scene, make_user

pytestmark = pytest.mark.slow
# The settings, shared with the CLI (the file says how to run it against a served API).
CONFIG = Path(__file__).with_name("schemathesis.toml")


@contextmanager
def _served(app):
    """The app over real HTTP on a free port (schemathesis' WSGI transport cannot run the
    stateful phase: it passes max_redirects to werkzeug's test client)."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()


def _run(base_url: str, pg_engine) -> tuple[Counter, list[str], Counter]:
    """Fuzz the served app; return failures by check, one line per failure, and statuses answered."""
    schema = schemathesis.openapi.from_url(f"{base_url}/api/openapi.json",
                                           config=SchemathesisConfig.from_path(CONFIG))

    @schema.auth(refresh_interval=None)
    class _FreshAdmin:
        """A new admin token for every request: the fuzzer may revoke the one it sent."""

        def get(self, case, context):
            with Session(pg_engine, expire_on_commit=False) as session:
                return make_user(session, "admin", "scene_admin")[1]

        def set(self, case, token, context):
            case.headers = {**(case.headers or {}), **auth(token)}

    outcome = _Outcome()
    for event in engine_for(schema).execute():
        outcome.record(event)
    return outcome.by_check, outcome.lines, outcome.statuses


class _Outcome:
    """Failures by check (each distinct failure once: shrinking and replays repeat it), one line
    per failure, and the statuses the API answered."""

    def __init__(self):
        self.by_check: Counter = Counter()
        self.lines: list[str] = []
        self.statuses: Counter = Counter()

    def _fail(self, check: str, line: str) -> None:
        if line not in self.lines:
            self.by_check[check] += 1
            self.lines.append(line)

    def record(self, event) -> None:
        if isinstance(event, events.ScenarioFinished):
            for interaction in event.recorder.interactions.values():
                if interaction.response is not None:
                    self.statuses[f"{interaction.request.method} {interaction.response.status_code}"] += 1
            for check in (c for checks in event.recorder.checks.values() for c in checks if c.failure_info):
                failure = check.failure_info.failure
                self._fail(check.name, f"{check.name}: {failure.operation}: {failure.title}: {failure.message}\n"
                                       f"    {check.failure_info.code_sample[:600]}")
        elif isinstance(event, events.NonFatalError):
            self._fail("error", f"error: {event.label}: {event.value!r}")
        elif isinstance(event, events.FatalError):
            self._fail("error", f"error: {event.exception!r}")
        elif isinstance(event, events.EngineFinished):
            for failure in event.failures:  # the checks that judge the whole run
                self._fail("after_run", f"after_run: {failure.operation}: {failure.title}: {failure.message}")


def test_every_check_passes_on_every_operation(app, pg_engine, session):
    _, token = make_user(session, "admin", "scene_admin")
    client = app.test_client()
    scene = make_scene(client, token, anchors=[{"key": "A1", "x": 1, "y": 1}])
    guest = client.post("/api/guests", json={}).json["token"]
    client.post(f"/api/scenes/{scene['id']}/join", headers=auth(guest))

    with _served(app) as base_url:
        by_check, lines, statuses = _run(base_url, pg_engine)

    assert not by_check, f"{dict(by_check)}\n" + "\n".join(sorted(set(lines)))
    # The run really reached the API: successes and refusals alike, on reads and writes.
    refused = sum(n for answer, n in statuses.items() if answer.endswith((" 400", " 409", " 422")))
    assert statuses["GET 200"] and statuses["POST 201"] and refused, statuses
