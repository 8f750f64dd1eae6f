"""The demo's client of the C3S API: the app's test client, failing loudly on unexpected answers."""

from __future__ import annotations

import io
from typing import Any

from flask.testing import FlaskClient

from c3s.demo import DemoError


class Api:
    """JSON calls to one C3S app, as a phone, an observer or the operator would make them."""

    def __init__(self, client: FlaskClient):
        self.client = client

    def call(self, method: str, path: str, *, token: str | None = None, expect: tuple[int, ...] = (200,),
             **kwargs: Any):
        """The response of ``method path``; raises `DemoError` when its status is not expected."""
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        response = self.client.open(path, method=method, headers=headers, **kwargs)
        if response.status_code not in expect:
            body = response.get_json(silent=True) or {}
            message = body.get("message") or response.get_data(as_text=True)[:300]
            raise DemoError(f"{method} {path} answered {response.status_code}: {message}")
        return response

    def json(self, method: str, path: str, *, token: str | None = None, expect: tuple[int, ...] = (200,),
             **kwargs: Any) -> Any:
        return self.call(method, path, token=token, expect=expect, **kwargs).get_json()

    def upload(self, path: str, data: bytes, filename: str, content_type: str, *, token: str,
               fields: dict[str, str] | None = None, expect: tuple[int, ...] = (201, 202)) -> Any:
        """POST a multipart form with one file (and plain ``fields``), encoded in memory so a
        large upload leaves no temporary file behind."""
        from werkzeug.datastructures import FileStorage
        from werkzeug.test import encode_multipart

        form: dict[str, Any] = {"file": FileStorage(io.BytesIO(data), filename=filename,
                                                    content_type=content_type), **(fields or {})}
        boundary, body = encode_multipart(form)
        return self.json("POST", path, token=token, expect=expect, data=body,
                         content_type=f"multipart/form-data; boundary={boundary}")
