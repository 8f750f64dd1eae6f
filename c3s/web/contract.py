"""The OpenAPI document says exactly what the API accepts: a request the document calls valid is
taken (or refused for a reason of state: 403, 404, 409), one it calls invalid is refused. apispec
leaves out some of what the marshmallow schemas check; this module adds it:

- exclusive bounds (``Range(min_inclusive=False)``) as ``exclusiveMinimum``/``exclusiveMaximum``;
- rules that tie fields together, from a schema's :meth:`openapi_rules` (e.g. a geo-reference
  is given whole or not at all): ``anyOf``/``oneOf`` next to the properties;
- a request body is required when its schema requires a field (an absent body is ``{}``, which
  lacks that field);
- a form field is text, never null: a nullable field of a form is left out to mean null; a file
  field's media types (its ``x-content-type``) become the part's ``encoding``;
- the body of a view that reads it by hand (no ``@input`` schema), from :func:`request_body`;
- the values a path segment may take, from :func:`path_values`.

:mod:`c3s.web.statuses` adds the statuses and headers every route can answer."""

from __future__ import annotations

import re

from apiflask import APIFlask
from apispec import BasePlugin
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow.validate import Range

_FORMS = ("multipart/form-data", "application/x-www-form-urlencoded")


def exclusive_bounds(self, field, ret, **_kwargs) -> dict:
    """An apispec attribute function: the bounds a Range excludes."""
    extra = {}
    for validator in field.validators:
        if not isinstance(validator, Range):
            continue
        if validator.min is not None and not validator.min_inclusive:
            ret.pop("minimum", None)
            extra["exclusiveMinimum"] = validator.min
        if validator.max is not None and not validator.max_inclusive:
            ret.pop("maximum", None)
            extra["exclusiveMaximum"] = validator.max
    return extra


class ContractPlugin(BasePlugin):
    """Adds to what the marshmallow plugin (created by apiflask for each document) writes."""

    def init_spec(self, spec) -> None:
        for plugin in spec.plugins:
            if isinstance(plugin, MarshmallowPlugin):
                plugin.converter.add_attribute_function(exclusive_bounds)

    def schema_helper(self, name, definition, schema=None, **_kwargs) -> dict | None:
        rules = getattr(schema, "openapi_rules", None)
        if rules is None:
            return None
        instance = schema() if isinstance(schema, type) else schema
        return instance.openapi_rules()


def request_body(body: dict):
    """Document the OpenAPI requestBody of a view that parses its body itself."""
    def mark(view):
        view.openapi_request_body = body
        return view
    return mark


def path_values(**values):
    """Document the values each named path segment may take (others answer 422)."""
    def mark(view):
        view.openapi_path_values = {name: list(allowed) for name, allowed in values.items()}
        return view
    return mark


def _view_marks(app: APIFlask, spec: dict) -> None:
    for rule in app.url_map.iter_rules():
        view = app.view_functions.get(rule.endpoint)
        body = getattr(view, "openapi_request_body", None)
        values = getattr(view, "openapi_path_values", {})
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        for method in (rule.methods or ()) if body or values else ():
            operation = spec.get("paths", {}).get(path, {}).get(method.lower())
            if operation is None:
                continue
            if body:
                operation["requestBody"] = body
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "path" and parameter.get("name") in values:
                    parameter["schema"] = {"type": "string", "enum": values[parameter["name"]]}


def _body_schema(spec: dict, schema: dict) -> dict:
    ref = schema.get("$ref", "")
    if ref.startswith("#/components/schemas/"):
        return spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return schema


def _not_null(field: dict) -> None:
    if isinstance(field.get("type"), list) and "null" in field["type"]:
        rest = [t for t in field["type"] if t != "null"]
        field["type"] = rest[0] if len(rest) == 1 else rest
    field.pop("nullable", None)
    if field.get("default", "") is None:
        del field["default"]


def _document_body(spec: dict, operation: dict) -> None:
    body = operation.get("requestBody")
    if not body:
        return
    for media_type, content in body.get("content", {}).items():
        schema = _body_schema(spec, content.get("schema", {}))
        if schema.get("required"):
            body["required"] = True
        if media_type in _FORMS:
            for name, field in schema.get("properties", {}).items():
                _not_null(field)
                if "x-content-type" in field:
                    content.setdefault("encoding", {})[name] = {"contentType": field.pop("x-content-type")}


def init_app(app: APIFlask) -> None:
    app.spec_plugins.append(ContractPlugin())
    previous = app.spec_callback  # apiflask keeps one processor: run the one before this first

    @app.spec_processor
    def _document_bodies(spec: dict) -> dict:
        _view_marks(app, spec)
        spec = previous(spec) if previous else spec
        for operations in spec.get("paths", {}).values():
            for operation in operations.values():
                _document_body(spec, operation)
        return spec
