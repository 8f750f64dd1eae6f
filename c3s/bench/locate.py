"""`c3s bench locate`: seconds per calibration photo through the whole locate job — read the
upload back from the file store, decode, map onto the scene, record observations, fuse and
commit — the figure that sizes the worker pool for a calibration rush.

On the embedded default (SQLite and a filesystem store in a temporary folder) so it runs
anywhere; pinned to one core. The baseline on the same photos is the decode step alone with
plain zxing-cpp (the least a locate job could do), reported with the ratio."""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import click


def _one_core() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    import cv2

    cv2.setNumThreads(1)


def _scene_with_photo(app, photo) -> tuple[int, int]:
    """A scene holding the photo's phones as pixels, and an observer; returns (scene id, user id)."""
    from c3s import accounts
    from c3s.models import Method, Permission, Pixel, Scene, User, UserPermission
    from c3s.vision.qrcode import parse_payload

    with app.extensions["c3s"].database.session() as session:
        observer = accounts.register(session, email="bench@example.org", password="bench password 1")
        method = session.query(Method).filter_by(code="qr").one()
        scene = Scene(name="bench", owner_id=observer.id, method_id=method.id, width=20.0, height=15.0)
        session.add(scene)
        session.flush()
        from c3s.models import Anchor

        for payload, (x, y) in photo.anchors.items():
            session.add(Anchor(scene_id=scene.id, key=parse_payload(payload).anchor_key, x=x + 1, y=y + 1))
        for phone in photo.phones:
            payload = parse_payload(phone.payload)
            if phone.kind == "pixel":
                user = User(is_guest=True)
                session.add(user)
                session.flush()
                session.add(Pixel(scene_id=scene.id, scene_width=20.0, scene_height=15.0, user_id=user.id,
                                  number=payload.number))
        admin = session.query(Permission).filter_by(name="admin").one()
        session.add(UserPermission(user_id=observer.id, permission_id=admin.id))
        session.commit()
        return scene.id, observer.id


def _run_jobs(app, scene_id: int, observer_id: int, jpeg: bytes, repeats: int) -> list[float]:
    from c3s.frames import pending_files
    from c3s.locate.jobs import create_job, run_job
    from c3s.models import Scene, User

    services = app.extensions["c3s"]
    seconds = []
    for _ in range(repeats):
        with services.database.session() as session:
            scene, observer = session.get(Scene, scene_id), session.get(User, observer_id)
            with pending_files(services.store) as pending:
                job = create_job(session, pending, observer, scene, data=jpeg, filename="crowd.jpg",
                                 content_type="image/jpeg", method="qr")
                session.commit()
            started = time.perf_counter()
            job = run_job(session, services.store, job.id, max_pixels=50_000_000,
                          request_build=services.request_build)
            seconds.append(time.perf_counter() - started)
            if job.status != "done":
                raise click.ClickException(f"the benchmark job failed: {job.reason}")
    return seconds


@click.command("locate")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
@click.option("--quick", is_flag=True, help="one small photo, for a smoke test")
@click.option("--repeats", default=5, show_default=True, type=click.IntRange(1, 50))
def command(as_json: bool, quick: bool, repeats: int) -> None:
    """Seconds per 12 MP calibration photo through a whole locate job, beside plain decoding."""
    import cv2
    import numpy as np
    import zxingcpp

    from c3s.db import init_db
    from c3s.vision.crowd import render_crowd
    from c3s.web import create_app

    _one_core()
    size = (1600, 1200, 8, 6) if quick else (4000, 3000, 16, 12)
    repeats = 1 if quick else repeats
    photo = render_crowd(seed=3, width=size[0], height=size[1], cols=size[2], rows=size[3],
                         module_px=(3.0, 6.0), n_anchors=8)
    jpeg = cv2.imencode(".jpg", photo.image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
    with tempfile.TemporaryDirectory(prefix="c3s-bench-") as folder:
        app = create_app({"instance_path": Path(folder)})
        init_db(app.extensions["c3s"].database.engine)
        scene_id, observer_id = _scene_with_photo(app, photo)
        print("running locate jobs…", file=sys.stderr)
        with app.app_context():
            job_s = _run_jobs(app, scene_id, observer_id, jpeg, repeats)
        app.extensions["c3s"].database.dispose()
    baseline_s = []
    for _ in range(repeats):
        started = time.perf_counter()
        image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)
        zxingcpp.read_barcodes(image)
        baseline_s.append(time.perf_counter() - started)
    phones = sum(p.kind == "pixel" for p in photo.phones)
    job = statistics.median(job_s)
    result = {
        "benchmark": "locate", "photo_px": list(size[:2]), "phones_in_photo": phones, "repeats": repeats,
        "job_s_per_photo": round(job, 3), "job_s_runs": [round(s, 3) for s in job_s],
        "baseline_decode_only_s": round(statistics.median(baseline_s), 3),
        "job_over_baseline": round(job / statistics.median(baseline_s), 2),
        "phones_per_core_second": round(phones / job, 1), "one_core": True, "quick": quick,
    }
    click.echo(json.dumps(result) if as_json else "\n".join(f"{k}: {v}" for k, v in result.items()))
