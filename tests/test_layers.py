"""Every top-level module of c3s sits in a layer of the import contract (.importlinter), so a new
module cannot slip past the rule that imports point one way (`lint-imports` checks the rule);
and the API's schemas have one home, c3s/web/schemas.py."""

import configparser
import pkgutil
import re
from pathlib import Path

import c3s

REPO = Path(__file__).resolve().parents[1]


def test_every_module_of_c3s_is_in_a_layer():
    config = configparser.ConfigParser()
    config.read(REPO / ".importlinter")
    layers = config["importlinter:contract:layers"]
    assert layers["type"] == "layers"
    assert "ignore_imports" not in layers  # no exceptions
    named = set(re.findall(r"c3s\.(\w+)", layers["layers"]))
    modules = {m.name for m in pkgutil.iter_modules(c3s.__path__)}
    assert modules - named == set(), "add these to a layer in .importlinter"
    assert named - modules == set(), "these layers name modules that do not exist"


def test_every_api_schema_lives_in_web_schemas():
    import importlib

    from marshmallow import Schema

    api = REPO / "c3s" / "web" / "api"
    for path in sorted(api.glob("*.py")):
        module = importlib.import_module(f"c3s.web.api.{path.stem}")
        local = [name for name, value in vars(module).items()
                 if isinstance(value, type) and issubclass(value, Schema) and value.__module__ == module.__name__]
        assert local == [], f"{path.name} defines {local}; schemas live in c3s/web/schemas.py"
