"""What the OpenAPI document states in words but JSON Schema cannot: rules comparing two values
of one scene body. Generated bodies are moved inside them (filtering would drop nearly all:
anchors and sizes are drawn apart), so that schemathesis' positive_data_acceptance judges the
API only on bodies the document calls valid.

- every anchor lies within the scene's width and height when the body gives them (a JSON
  Schema bound is a constant; this one is another field of the body);
- anchor keys are unique (a repeated key is dropped; ``uniqueItems`` compares whole anchors, not their keys).

An anchor outside the size a scene already has is a refusal of state (409), not filtered.
Load it for the CLI with ``SCHEMATHESIS_HOOKS=tests.helpers.fuzz_hooks schemathesis run ...``;
tests/web/test_api_fuzz.py imports it (importing registers the hook)."""

from __future__ import annotations

import schemathesis

MAX_SIZE = 1e6  # SceneIn's width/height and AnchorIO's x/y bound
SCENE_BODIES = {("POST", "/api/scenes"), ("PATCH", "/api/scenes/{scene_id}")}


def consistent_scene_body(context, body):
    operation = context.operation
    if operation is None or (operation.method.upper(), operation.path) not in SCENE_BODIES:
        return body
    if not isinstance(body, dict) or not isinstance(body.get("anchors"), list):
        return body
    anchors, keys = [], set()
    for anchor in body["anchors"]:
        if isinstance(anchor, dict) and anchor.get("key") in keys:
            continue
        if isinstance(anchor, dict):
            keys.add(anchor.get("key"))
            anchor = dict(anchor)
            for side, axis in (("width", "x"), ("height", "y")):
                size, at = body.get(side), anchor.get(axis)
                # Past the schema's own bound (1e6) is a negative case's value: it stays.
                if isinstance(size, int | float) and isinstance(at, int | float) and size < at <= MAX_SIZE:
                    anchor[axis] = size
        anchors.append(anchor)
    return {**body, "anchors": anchors}


@schemathesis.hook
def map_body(context, body):
    return consistent_scene_body(context, body)
