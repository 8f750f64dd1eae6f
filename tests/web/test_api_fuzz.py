"""The OpenAPI document, fuzzed with schemathesis against the API on real PostgreSQL and Redis:
no generated request gets a 5xx, and no response breaks the schema the API publishes."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.helpers.factories import auth, make_scene, make_user

pytestmark = pytest.mark.slow
EXAMPLES_PER_OPERATION = 8


def test_no_server_errors_and_responses_match_the_schema(app, session):
    _, token = make_user(session, "admin", "scene_admin")
    client = app.test_client()
    scene = make_scene(client, token, anchors=[{"key": "A1", "x": 1, "y": 1}])
    guest = client.post("/api/guests", json={}).json["token"]
    client.post(f"/api/scenes/{scene['id']}/join", headers=auth(guest))
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 25

    statuses: dict[str, list[int]] = {}
    for operation in operations:
        _fuzz(operation, session, statuses.setdefault(f"{operation.method.upper()} {operation.path}", []))
    # Every operation was really called, and those that need no id answered at least once.
    assert all(statuses.values()), [name for name, codes in statuses.items() if not codes]
    assert len(statuses) == len(operations)
    for name in ("GET /api/time", "GET /api/health", "GET /api/scenes"):
        assert 200 in statuses[name], (name, statuses[name])


def _fuzz(operation, session, codes: list[int]) -> None:
    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def fuzz(case):
        # A fresh token per call: the fuzzer is free to revoke the one it was given.
        _, fresh = make_user(session, "admin", "scene_admin")
        response = case.call_and_validate(headers=auth(fresh), checks=[not_a_server_error, response_schema_conformance])
        codes.append(response.status_code)

    fuzz()
