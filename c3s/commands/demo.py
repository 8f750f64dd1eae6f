"""`c3s demo`: play a whole simulated show on the embedded default and report what happened."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from c3s.demo.sync import TIMING, clip_fields
from c3s.demo.sync import histogram_picture as sync_picture


class Stages:
    """Wall-clock seconds per stage, in order, and one progress bar per stage (stderr)."""

    def __init__(self, quiet: bool):
        self.seconds: dict[str, float] = {}
        self.quiet = quiet

    @contextmanager
    def run(self, name: str, total: int = 1, unit: str = "step") -> Iterator:
        from tqdm import tqdm

        start = time.perf_counter()
        with tqdm(total=total, desc=f"{name:<24}", unit=unit, disable=self.quiet, leave=True,
                  dynamic_ncols=True) as bar:
            yield bar.update
            bar.n = total
            bar.refresh()
        self.seconds[name] = time.perf_counter() - start


def _calibrate(ctx: dict, stages: Stages, out: Path, seed: int) -> None:
    """Photograph every section, survey its posters, upload the photos, film and upload the clip."""
    from c3s.demo import calibration as cal

    api, plan, scene_id, observer = ctx["api"], ctx["plan"], ctx["scene_id"], ctx["observer"]
    folder = out / "calibration"
    folder.mkdir(exist_ok=True)
    truth = cal.Truth()
    photos = []
    with stages.run("render QR photos", len(plan.sections), "photo") as step:
        for section in plan.sections:
            photo = cal.photograph(section, scene_id, seed)
            cal.record_truth(truth, photo, scene_id)
            (folder / f"section-{section.index + 1:02d}.jpg").write_bytes(cal.jpeg(photo.image))
            photos.append(photo if section.index == 0 else None)
            ctx.setdefault("anchors", []).extend(cal.surveyed_anchors([photo]))
            step(1)
    api.json("PATCH", f"/api/scenes/{scene_id}", token=ctx["operator"], json={"anchors": ctx["anchors"]})
    jobs = []
    with stages.run("locate by QR", len(plan.sections), "photo") as step:
        for section in plan.sections:
            name = f"section-{section.index + 1:02d}.jpg"
            jobs.append(cal.upload_job(api, observer, scene_id, (folder / name).read_bytes(), name,
                                       "image/jpeg", "qr"))
            step(1)
    camera = cal.stand_camera(plan)
    clip_path = folder / "blink.mp4"
    with stages.run("render blink clip", int(cal.CLIP_MS * cal.CLIP_FPS / 1000), "frame") as step:
        clip = cal.film(truth, camera, clip_path, seed, step, timing=TIMING)
    with stages.run("locate by blink", 1, "clip") as step:
        blink_job = cal.upload_job(api, observer, scene_id, clip_path.read_bytes(), "blink.mp4",
                                   "video/mp4", "blink", fields=clip_fields(clip))
        step(1)
    ctx.update(truth=truth, first_photo=photos[0], qr_jobs=jobs, blink_job=blink_job, clip=clip, camera=camera)


def _sync_check(ctx: dict, stages: Stages, out: Path, seed: int) -> None:
    """Every phone checks in and learns its measured offset, then plays its blink pattern that
    much earlier; a second clip of the stand (the sync check) measures what is left."""
    from c3s.demo import calibration as cal
    from c3s.demo import sync

    api, scene_id, truth, first = ctx["api"], ctx["scene_id"], ctx["truth"], ctx["clip"]
    with stages.run("phones check in", len(first.numbers), "phone") as step:
        early = sync.corrections(api, scene_id, ctx["tokens"], first.numbers)
        step(len(first.numbers))
    path = out / "calibration" / "sync-check.mp4"
    in_view = set(truth.visible_in_clip)  # the location figures are the calibration clip's
    with stages.run("render sync-check clip", int(cal.CLIP_MS * cal.CLIP_FPS / 1000), "frame") as step:
        second = cal.film(truth, ctx["camera"], path, seed + 1, step, timing=TIMING,
                          playing=lambda take: sync.replay(take, first, early))
    truth.visible_in_clip = in_view
    with stages.run("sync check", 1, "clip") as step:
        job = cal.upload_job(api, ctx["observer"], scene_id, path.read_bytes(), "sync-check.mp4", "video/mp4",
                             "blink", fields=clip_fields(second))
        step(1)
    ctx.update(sync_job=job, sync=sync.check_figures(ctx["blink_job"], job, first, second, early))


def _play(ctx: dict, stages: Stages, n_frames: int, rng) -> None:
    """Upload the animation, start the show, let every phone sync and fetch its track, and check
    a few phones against the live colour endpoint while it plays."""
    from c3s.demo import show

    api, scene_id = ctx["api"], ctx["scene_id"]
    frames = show.draw_frames(n_frames, (ctx["plan"].width, ctx["plan"].height))
    ctx["frames"] = frames
    missing = show.missing_show_api(api)
    if missing:
        ctx["show_missing"] = missing
        return
    with stages.run("frames and colour maps", n_frames + 1, "frame") as step:
        show.upload_frames(api, ctx["operator"], scene_id, frames, step)
        state = show.start_show(api, ctx["operator"], scene_id)
    with stages.run("sync clocks, fetch tracks", len(ctx["numbers"]), "phone") as step:
        phones, refused = show.fetch_tracks(api, ctx["operator"], scene_id, ctx["numbers"], rng, step)
    with stages.run("play (live check)", 1) as step:
        live = show.live_check(api, scene_id, phones, rng)
        step(1)
    with stages.run("operator preview", len(state["frames"]) + 1, "request") as step:
        preview = show.operator_preview(api, ctx["operator"], scene_id, state)
        step(len(state["frames"]) + 1)
    ctx.update(show_state=state, phones=phones, refused=refused, live=live, preview=preview,
               maps_agree=show.maps_agree_with_tracks(preview, phones))


def _show_figures(ctx: dict, out: Path, size: tuple[float, float]):
    """The frame pictures, and how well the phones played the show."""
    import numpy as np

    from c3s.demo import report
    from c3s.demo.show import frame_middles_ms

    _, share, colour_errors = report.show_pictures(out, ctx["frames"], ctx["phones"],
                                                  frame_middles_ms(ctx["show_state"]), ctx["truth"], size)
    report.preview_picture(out / "operator-preview.png", ctx["frames"][0], ctx["preview"], size)
    phones = ctx["phones"]
    sync = np.array([abs(p.estimated_offset_ms - p.clock_offset_ms) for p in phones])
    return report.ShowFigures(
        phones=len(phones), tracks=sum(p.track is not None for p in phones), refused=ctx["refused"],
        right_frame_share=share, sync_error_p95_ms=float(np.percentile(sync, 95)),
        colour_error_median=_percentile(colour_errors, 50), colour_error_p95=_percentile(colour_errors, 95),
        live_agree=int(ctx["live"][0]), live_asked=int(ctx["live"][1]),
        maps_agree=int(ctx["maps_agree"][0]), maps_compared=int(ctx["maps_agree"][1]))


def _report(ctx: dict, stages: Stages, out: Path) -> tuple[str, dict]:
    from c3s.demo import report

    api, scene_id, truth = ctx["api"], ctx["scene_id"], ctx["truth"]
    size = (ctx["plan"].width, ctx["plan"].height)
    with stages.run("pictures", len(ctx["frames"]) + 4, "picture") as step:
        located = report.located_pixels(api, ctx["operator"], scene_id)
        figures = report.location_figures(truth, report.observed_positions(ctx["app"], scene_id), located)
        report.observer_picture(out / "observer-photo.png", ctx["first_photo"], ctx["qr_jobs"][0], scene_id)
        report.blink_picture(out / "blink-clip.png", next(iter(ctx["clip"].frames())), ctx["blink_job"])
        report.positions_picture(out / "positions.png", truth, located, size)
        sync_picture(out / "sync-before-after.png", ctx["sync"])
        step(4)
        show_figures = None if "show_missing" in ctx else _show_figures(ctx, out, size)
    jobs = report.job_lines(ctx["qr_jobs"], ctx["blink_job"])
    if ctx["sync_job"]["status"] != "done":
        jobs.append(f"  sync check job {ctx['sync_job']['id']} {ctx['sync_job']['status']}: "
                    f"{ctx['sync_job']['reason']}")
    jobs += ctx["sync"].lines()
    if "show_missing" in ctx:
        jobs.append(f"show: NOT PLAYED: {ctx['show_missing']}")
    counts = {"phones": len(ctx["numbers"]), "photos": len(ctx["plan"].sections),
              "frames": len(ctx["frames"]), "seed": ctx["seed"]}
    text = report.table(figures, show_figures, stages.seconds, counts, jobs)
    summary = {**counts, "scene": {"width": size[0], "height": size[1], "units": "m"},
               "location": {f.name: {"in_view": f.in_view, "located": f.located, "error_median": f.median,
                                     "error_p95": f.p95} for f in figures},
               "jobs": {"qr": [j["status"] for j in ctx["qr_jobs"]], "blink": ctx["blink_job"]["status"]},
               "show": show_figures.__dict__ if show_figures else {"show_missing": ctx["show_missing"]},
               "sync": ctx["sync"].summary(),
               "seconds": stages.seconds}
    return text, summary


def _percentile(values, q: float) -> float:
    import numpy as np

    return float(np.percentile(values, q)) if len(values) else float("nan")


@click.command("demo")
@click.option("--phones", default=2000, show_default=True, type=click.IntRange(1, 20_000),
              help="Phones in the simulated stand.")
@click.option("--frames", "n_frames", default=6, show_default=True, type=click.IntRange(1, 100),
              help="Frames of the animation played on the stand.")
@click.option("--out", default="demo-out", show_default=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the pictures, the calibration media, summary.json and the demo's "
                   "own database (OUT/instance, replaced on every run).")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of every random choice.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def demo_command(phones: int, n_frames: int, out: Path, seed: int, quiet: bool) -> None:
    """Play a whole show on a simulated stand, on the embedded default (no database servers).

    Phones join a scene through the API; photos of each section (QR codes and reference posters)
    and a clip of the blinking stand are rendered and uploaded as an observer would, and the real
    locate jobs place the phones. The phones follow the server clock as on a stadium's cellular
    network (clock error 20 ms, 1 sigma) with displays 40-70 ms slow: the clip times every
    phone's light, each phone learns its offset at check-in and plays that much earlier, and a
    second clip (a sync check) measures what is left. An animation is uploaded and started,
    every phone syncs its clock and fetches its track. Ends with a table (phones located per
    method, position error against the truth, light-output offsets before and after the sync
    check, seconds per stage) and pictures in OUT: the observer photo with its detections,
    located versus true positions, the offsets' histogram before and after, and each frame
    beside the crowd's rendering of it.
    The C3S_* environment variables are ignored: the demo never touches a real database.
    """
    import numpy as np

    from c3s.demo import DemoError
    from c3s.demo import stand as st
    from c3s.demo.api import Api

    out.mkdir(parents=True, exist_ok=True)
    stages = Stages(quiet)
    rng = np.random.default_rng(seed)
    try:
        with stages.run("start the API") as step:
            app = st.open_app(st.fresh_instance(out))
            api = Api(app.test_client())
            plan = st.plan_stand(phones)
            operator = st.staff_token(api, app, "operator@demo.example.org", "scene_admin")
            scene_id = st.create_scene(api, operator, plan)["id"]
            observer = st.staff_token(api, app, "observer@demo.example.org", "observer", scene_id)
        with stages.run("phones join", phones, "phone") as step:
            tokens: dict[int, str] = {}
            numbers = st.join_phones(api, scene_id, phones, step, tokens)
        ctx = {"app": app, "api": api, "plan": st.seat_numbers(plan, numbers, rng), "scene_id": scene_id,
               "operator": operator, "observer": observer, "numbers": numbers, "seed": seed, "tokens": tokens}
        _calibrate(ctx, stages, out, seed)
        _sync_check(ctx, stages, out, seed)
        _play(ctx, stages, n_frames, rng)
        text, summary = _report(ctx, stages, out)
    except DemoError as error:
        raise click.ClickException(str(error)) from None
    finally:
        if "app" in locals():
            app.extensions["c3s"].database.dispose()
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    click.echo(text)
    frames = "" if "show_missing" in summary["show"] else ", operator-preview.png, frame-NN.png"
    click.echo(f"\npictures: {out}/observer-photo.png, blink-clip.png, positions.png, "
               f"sync-before-after.png{frames}; "
               f"figures: {out}/summary.json")
    if "show_missing" in summary["show"]:
        raise click.ClickException(f"the show was not played: {summary['show']['show_missing']}")
