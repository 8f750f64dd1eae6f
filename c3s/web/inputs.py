"""Checks on every request before a view sees it: no NUL or other control character in any
string that could be stored (query arguments, form fields, JSON strings and keys, upload file
names and content types), and JSON nested too deeply for the parser is a clear 400.

PostgreSQL refuses NUL in text (SQLite stores it), so without this a NUL reached the database
and came back as a 500."""

from __future__ import annotations

import re

from flask import Flask, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import BadRequest

from c3s.errors import Invalid

# C0 controls and DEL; tab, line feed and carriage return are text (a reason may have lines).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# A file name or a content type is one line.
_CONTROL_IN_NAME = re.compile(r"[\x00-\x1f\x7f]")
MAX_JSON_DEPTH = 64


class _BoundedJSON(DefaultJSONProvider):
    """Flask's JSON, with a nesting limit: the parser would otherwise recurse until Python's
    stack gives out (a RecursionError, a 500)."""

    def loads(self, s, **kwargs):
        text = s.decode("utf-8", "replace") if isinstance(s, bytes | bytearray) else s
        depth = _depth(text)
        if depth > MAX_JSON_DEPTH:
            raise BadRequest(f"the JSON body is nested more than {MAX_JSON_DEPTH} levels deep; "
                             f"at most {MAX_JSON_DEPTH}")
        return super().loads(s, **kwargs)


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def _depth(text: str) -> int:
    """The deepest nesting of arrays and objects, strings skipped (regular expressions do the
    scanning, so a large seat map costs milliseconds)."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    depth = deepest = 0
    for char in brackets:
        if char in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_JSON_DEPTH:
                    break
        else:
            depth -= 1
    return deepest


def _bad_strings(value, where: str):
    """(where, why) for every string in a parsed JSON value that holds a control character."""
    if isinstance(value, str):
        if _CONTROL.search(value):
            yield where
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and _CONTROL.search(key):
                yield f"{where} (a key)"
            yield from _bad_strings(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _bad_strings(item, f"{where}[{index}]")


def refuse_control_characters(value: str, where: str) -> None:
    """Invalid when `value` holds a control character (for bodies parsed outside Flask)."""
    if _CONTROL.search(value):
        raise Invalid(f"text may not contain NUL or other control characters: {where}",
                      detail={"fields": [where]})


def _check_request() -> None:
    bad = [f"query {name}" for name, value in request.args.items(multi=True) if _CONTROL.search(value)]
    if request.mimetype == "multipart/form-data" or request.mimetype == "application/x-www-form-urlencoded":
        bad += [f"form {name}" for name, value in request.form.items(multi=True) if _CONTROL.search(value)]
        for name, upload in request.files.items(multi=True):
            if _CONTROL_IN_NAME.search(upload.filename or ""):
                bad.append(f"the file name of {name}")
            if _CONTROL_IN_NAME.search(upload.content_type or ""):
                bad.append(f"the content type of {name}")
    elif request.is_json and request.content_length:
        bad += list(_bad_strings(request.get_json(silent=False), "json"))
    if bad:
        raise Invalid("text may not contain NUL or other control characters: " + ", ".join(bad[:10]),
                      detail={"fields": bad[:50]})


def init_app(app: Flask) -> None:
    app.json = _BoundedJSON(app)
    app.before_request(_check_request)
