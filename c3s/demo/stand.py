"""The stand: a scene on the embedded default, its staff, its sections of seats, and the phones
that join it through the API.

Geometry (scene units are metres, x right, y down): sections of ``SECTION_COLS x SECTION_ROWS``
seats ``SEAT_PITCH`` apart, laid out in a grid with aisles between them and a margin around. Each
section has ``ANCHORS_PER_SECTION`` reference posters on seats (surveyed anchors, as an operator
would place them); every other seat holds a phone, except in the last section, whose spare seats
hold phones of another scene (codes the pipeline must ignore).
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from flask import Flask
from sqlalchemy import select

from c3s.config import Config
from c3s.demo import DemoError
from c3s.demo.api import Api

SECTION_COLS, SECTION_ROWS = 20, 10
ANCHORS_PER_SECTION = 6
SEAT_PITCH = (0.55, 0.85)
SECTION_STEP = (12.0, 9.5)  # one section and its aisle
MARGIN = 1.0
MARKER = ".c3s-demo"
PASSWORD = "demo password, not secret"


@dataclass(frozen=True)
class Section:
    """One block of seats, photographed on its own. ``numbers``: pixel numbers of its phones in
    seat order (filled once the phones have joined)."""

    index: int
    origin: tuple[float, float]
    cols: int
    rows: int
    n_phones: int
    n_foreign: int
    numbers: tuple[int, ...] = ()

    @property
    def anchor_keys(self) -> list[str]:
        return [f"S{self.index + 1}A{k + 1}" for k in range(ANCHORS_PER_SECTION)]

    @property
    def extent(self) -> tuple[float, float]:
        return ((self.cols - 1) * SEAT_PITCH[0], (self.rows - 1) * SEAT_PITCH[1])


@dataclass(frozen=True)
class StandPlan:
    sections: tuple[Section, ...]
    width: float
    height: float


def plan_stand(n_phones: int) -> StandPlan:
    """Sections enough for ``n_phones`` phones, in a grid about 1.2 times wider than tall."""
    if n_phones < 1:
        raise ValueError("the stand needs at least one phone")
    per_section = SECTION_COLS * SECTION_ROWS - ANCHORS_PER_SECTION
    n_sections = math.ceil(n_phones / per_section)
    across = max(1, round(math.sqrt(n_sections * 1.2)))
    down = math.ceil(n_sections / across)
    sections = []
    for s in range(n_sections):
        phones = min(per_section, n_phones - s * per_section)
        rows = max(3, math.ceil((phones + ANCHORS_PER_SECTION) / SECTION_COLS))  # posters off one line
        origin = (MARGIN + (s % across) * SECTION_STEP[0], MARGIN + (s // across) * SECTION_STEP[1])
        sections.append(Section(index=s, origin=origin, cols=SECTION_COLS, rows=rows, n_phones=phones,
                                n_foreign=SECTION_COLS * rows - ANCHORS_PER_SECTION - phones))
    full_w, full_h = Section(0, (0, 0), SECTION_COLS, SECTION_ROWS, 0, 0).extent
    width = 2 * MARGIN + (across - 1) * SECTION_STEP[0] + full_w
    height = 2 * MARGIN + (down - 1) * SECTION_STEP[1] + full_h
    return StandPlan(tuple(sections), round(width, 2), round(height, 2))


def seat_numbers(plan: StandPlan, numbers: list[int], rng: np.random.Generator) -> StandPlan:
    """People sit where they like: the joined numbers shuffled over the sections' phone seats."""
    shuffled = rng.permutation(np.asarray(numbers, dtype=np.int64))
    sections, start = [], 0
    for section in plan.sections:
        chunk = tuple(int(n) for n in shuffled[start : start + section.n_phones])
        sections.append(Section(**{**section.__dict__, "numbers": chunk}))
        start += section.n_phones
    return StandPlan(tuple(sections), plan.width, plan.height)


def fresh_instance(out: Path) -> Path:
    """An empty instance folder inside the output folder (a previous demo's is replaced; any
    other folder of that name is left alone)."""
    instance = out / "instance"
    if instance.exists():
        if not (instance / MARKER).exists():
            raise DemoError(f"{instance} exists and was not made by the demo; choose another --out")
        shutil.rmtree(instance)
    instance.mkdir(parents=True)
    (instance / MARKER).write_text("made by c3s demo; deleted by the next run\n")
    return instance


def open_app(instance: Path) -> Flask:
    """The API on the embedded default (SQLite, files on disk, tasks in process) in ``instance``,
    whatever C3S_* variables the environment holds."""
    from c3s.db import init_db
    from c3s.web import create_app

    app = create_app(Config(instance_path=instance.resolve(), max_image_pixels=50_000_000))
    init_db(app.extensions["c3s"].database.engine)
    return app


def _grant(app: Flask, user_id: int, right: str, scene_id: int | None = None) -> None:
    """Give a right directly in the database: on a fresh instance nobody can grant it yet."""
    from c3s.models import Permission, UserPermission

    with app.extensions["c3s"].database.transaction() as session:
        permission = session.scalar(select(Permission).where(Permission.name == right))
        session.add(UserPermission(user_id=user_id, permission_id=permission.id, scene_id=scene_id))


def staff_token(api: Api, app: Flask, email: str, right: str, scene_id: int | None = None) -> str:
    """Register a member of staff through the API, grant ``right`` and log in."""
    api.json("POST", "/api/users", json={"email": email, "password": PASSWORD}, expect=(202,))
    login = api.json("POST", "/api/tokens", json={"email": email, "password": PASSWORD}, expect=(201,))
    _grant(app, login["user"]["id"], right, scene_id)
    return login["token"]


def create_scene(api: Api, token: str, plan: StandPlan) -> dict:
    body = {"name": "Demo stand", "method": "qr", "width": plan.width, "height": plan.height,
            "units": "m", "fit": "stretch"}
    return api.json("POST", "/api/scenes", token=token, json=body, expect=(201,))


def join_phones(api: Api, scene_id: int, n_phones: int, progress: Callable[[int], object],
                tokens: dict[int, str] | None = None) -> list[int]:
    """Each phone opens the link: a guest account with its device token, then a join; returns
    the pixel numbers the scene handed out (and keeps each phone's token in ``tokens``)."""
    numbers = []
    for i in range(n_phones):
        token = api.json("POST", "/api/guests", json={"display_name": f"phone {i + 1}"},
                         expect=(201,))["token"]
        joined = api.json("POST", f"/api/scenes/{scene_id}/join", token=token, expect=(201,))
        numbers.append(int(joined["number"]))
        if tokens is not None:
            tokens[int(joined["number"])] = token
        progress(1)
    return numbers
