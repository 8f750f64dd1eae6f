"""The status codes every route really can answer, added to the OpenAPI document so that a
client (and schemathesis' status-code check) finds each documented:

- 503 everywhere but the clock: the database, Redis or the task queue does not answer;
- 403 on every route that takes a token (the read model: :mod:`c3s.permissions`);
- 404 on every route with an id in its path;
- 422 on every route with a body or query (validation, control characters: :mod:`c3s.web.inputs`);
- 400 and 413 on every route with a body (malformed or too deep JSON; too large, too many parts);
- 414 everywhere: gunicorn refuses a request line longer than it reads, before the app.

Each refers to the same error body as the rest: ``{"message": ..., "detail": {...}}``, and
carries the headers it is sent with: ``Retry-After`` (seconds) on every 503 and 429,
``WWW-Authenticate`` on every 401.

Every text the API takes (query parameters, string fields of request bodies) is documented with
the pattern :mod:`c3s.web.inputs` enforces: no NUL or other control character."""

from __future__ import annotations

from apiflask import APIFlask

_ERROR = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/HTTPError"}}}}
_WHY = {
    400: "malformed JSON, or JSON nested too deeply",
    403: "you may not read or change this (the message says who may)",
    404: "no such scene, pixel, frame, job or user",
    413: "the body is too large, or the form has too many parts",
    422: "invalid input: the message and `detail` say which field and why",
    503: "the database, Redis or the task queue does not answer right now; ask again after `Retry-After` s",
}
_NO_DATABASE = {("get", "/api/time")}
# Answered by gunicorn before the app sees the request (its limit_request_line, 4094 bytes), as HTML.
_SERVER = {"414": {"description": "the request line (path and query) is longer than the server reads",
                   "content": {"text/html": {"schema": {"type": "string"}}}}}
_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before asking again", "required": True,
                                "schema": {"type": "integer", "minimum": 0}}}
_HEADERS = {
    "401": {"WWW-Authenticate": {"description": "`Bearer realm=\"c3s\"`", "required": True,
                                 "schema": {"type": "string"}}},
    "429": _RETRY_AFTER,
    "503": _RETRY_AFTER,
}
# What c3s.web.inputs lets through: no C0 control but tab, line feed and carriage return, no DEL.
TEXT_PATTERN = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f]*$"


def _text_schema(schema: dict) -> None:
    if schema.get("type") == "string" and not ({"pattern", "enum", "format"} & set(schema)):
        schema["pattern"] = TEXT_PATTERN


def _document_text(spec: dict, operation: dict) -> None:
    for parameter in operation.get("parameters", []):
        if parameter.get("in") == "query":
            _text_schema(parameter.get("schema", {}))
    for content in operation.get("requestBody", {}).get("content", {}).values():
        schema = content.get("schema", {})
        ref = schema.get("$ref", "")
        if ref.startswith("#/components/schemas/"):
            schema = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
        for field in schema.get("properties", {}).values():
            _text_schema(field)


def _statuses(method: str, path: str, operation: dict) -> set[int]:
    codes = set() if (method, path) in _NO_DATABASE else {503}
    if operation.get("security"):
        codes.add(403)
    if "{" in path:
        codes.add(404)
    if operation.get("requestBody") or any(p.get("in") == "query" for p in operation.get("parameters", [])):
        codes.add(422)
    if operation.get("requestBody") or method in ("post", "put", "patch"):
        codes.update((400, 413, 422))
    return codes


def init_app(app: APIFlask) -> None:
    @app.spec_processor
    def _document_statuses(spec: dict) -> dict:
        for path, operations in spec.get("paths", {}).items():
            for method, operation in operations.items():
                _document_text(spec, operation)
                responses = operation.setdefault("responses", {})
                for code in sorted(_statuses(method, path, operation)):
                    responses.setdefault(str(code), {"description": _WHY[code], **_ERROR})
                for code, answer in _SERVER.items():
                    responses.setdefault(code, answer)
                for code, headers in _HEADERS.items():
                    if code in responses:
                        responses[code].setdefault("headers", {}).update(headers)
        return spec
