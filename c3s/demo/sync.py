"""Camera-closed sync in the demo: the stand's phones follow the server clock as real phones do
(a stadium's cellular paths, so each clock is off by its path's asymmetry, and displays that
light up 40-70 ms after they are told to, rising and falling at different speeds). The
calibration clip times every phone's light ("before"); every phone then reads its measured
offset at its check-in, as the pixel page does, and plays that much earlier; a second clip of the
blinking stand (the sync check) measures what is left ("after"), through the same locate job.

Figures come from the jobs' own reports (what the operator sees) and from the renderer's truth
(each phone's real offset minus the correction it played with).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from c3s.demo import DemoError
from c3s.demo.api import Api

# Stadium cellular: the round-trip midpoint is off by half the path's asymmetry, about 20 ms (1 σ).
CLOCK_ERROR_MS = 20.0
LATENCY_MS = (40.0, 70.0)  # display latency by phone model (WALT measurements)
RISE_FALL_MS = 15.0  # black-to-white and white-to-black differ by up to this
READOUT_MS = 20.0  # the filming phone's rolling shutter
TIMING = {"clock_error_ms": CLOCK_ERROR_MS, "latency_ms": LATENCY_MS, "rise_fall_ms": RISE_FALL_MS,
          "readout_ms": READOUT_MS}
TARGET_P95_MS = 5.0


def replay(clip, timing_of, early_ms: np.ndarray):
    """``clip`` (a new take: camera, noise, occlusions of its own) with the phones of
    ``timing_of`` (the same numbers and places) keeping their clocks and displays but playing
    ``early_ms`` (n,) earlier: the clip of a crowd playing its corrected timing."""
    if not np.array_equal(clip.numbers, timing_of.numbers):
        raise ValueError("a replay needs the same phones in the same order")
    early = np.nan_to_num(np.asarray(early_ms, dtype=float), nan=0.0)
    p = timing_of.params
    params = {**clip.params, "clock_error_ms": p["clock_error_ms"] - early, "latency_ms": p["latency_ms"],
              "rise_minus_fall_ms": p["rise_minus_fall_ms"]}
    return replace(clip, params=params, offset_ms=timing_of.offset_ms - early)


def clip_fields(clip) -> dict[str, str]:
    """What the filming phone knows of its clip: when it started on the server clock (its own
    synced clock) and its camera's rolling-shutter readout (a property of the phone model)."""
    return {"start_ms": f"{clip.server_start_ms:.3f}", "readout_ms": f"{clip.readout_ms:g}"}


def corrections(api: Api, scene_id: int, tokens: dict[int, str], numbers: np.ndarray) -> np.ndarray:
    """Each phone's check-in (``GET /me``): the offset it now plays early by (NaN: none yet)."""
    early = np.full(len(numbers), np.nan)
    for i, number in enumerate(numbers.tolist()):
        me = api.json("GET", f"/api/scenes/{scene_id}/me", token=tokens[number])
        if me.get("offset_ms") is not None:
            early[i] = float(me["offset_ms"])
    return early


@dataclass
class SyncFigures:
    """Light-output offsets (ms) before and after correction: as the jobs measured them, and as
    they really were (truth: every phone of the clip)."""

    before: dict
    after: dict
    true_before: np.ndarray
    true_after: np.ndarray
    corrected: int
    phones: int

    @staticmethod
    def p95(values: np.ndarray) -> float:
        return float(np.percentile(np.abs(values), 95)) if len(values) else float("nan")

    corrected_mask: np.ndarray | None = None

    @property
    def true_after_corrected(self) -> np.ndarray:
        return self.true_after if self.corrected_mask is None else self.true_after[self.corrected_mask]

    def summary(self) -> dict:
        keys = ("phones", "median_ms", "p95_abs_ms", "spread_p95_ms", "worst_sections")
        return {"before": {k: self.before.get(k) for k in keys}, "after": {k: self.after.get(k) for k in keys},
                "true_p95_abs_ms": {"before": self.p95(self.true_before), "after": self.p95(self.true_after),
                                    "after_corrected_phones": self.p95(self.true_after_corrected)},
                "corrected": self.corrected, "phones": self.phones, "target_p95_ms": TARGET_P95_MS}

    def lines(self) -> list[str]:
        def row(name: str, measured: dict, truth: np.ndarray) -> str:
            return (f"  {name:<8} {measured.get('phones', 0):>7} {_ms(measured.get('median_ms')):>10} "
                    f"{_ms(measured.get('p95_abs_ms')):>10} {_ms(self.p95(truth)):>11}")

        worst = (self.after.get("worst_sections") or [{}])[0]
        return ["", "sync (light output against the server clock; timed and median/p95: the jobs' reports,",
                "      true p95: every phone of the clip against the renderer's truth)",
                f"  {'':<8} {'timed':>7} {'median':>10} {'p95 |off|':>10} {'true p95':>11}",
                row("before", self.before, self.true_before), row("after", self.after, self.true_after),
                f"  {self.corrected} of {self.phones} phones corrected (true p95 of those "
                f"{_ms(self.p95(self.true_after_corrected))}); worst section after: "
                f"{worst.get('section', '-')} ({_ms(worst.get('p95_abs_ms'))} p95); target p95 <= "
                f"{TARGET_P95_MS:.0f} ms"]


def _ms(value) -> str:
    return "-" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.1f} ms"


def check_figures(before_job: dict, after_job: dict, first, second, early: np.ndarray) -> SyncFigures:
    before, after = before_job["stats"].get("sync") or {}, after_job["stats"].get("sync") or {}
    if not after.get("phones"):
        raise DemoError(f"the sync check (job {after_job['id']}, {after_job['status']}) timed no phone: "
                        f"{after_job.get('reason') or after_job['stats'].get('note', 'no offsets measured')}")
    return SyncFigures(before, after, first.offset_ms.copy(), second.offset_ms.copy(),
                       int(np.isfinite(early).sum()), len(early), np.isfinite(early))


def histogram_picture(path: Path, figures: SyncFigures, width: int = 1200, height: int = 560) -> Path:
    """The true light-output offsets of the stand before correction (top, grey) and after one
    sync check (bottom, green), on one millisecond axis, each panel scaled to its tallest bar."""
    before, after = figures.true_before, figures.true_after
    lo = min(-10.0, float(np.floor(min(before.min(), after.min()) / 5) * 5))
    hi = max(10.0, float(np.ceil(max(before.max(), after.max()) / 5) * 5))
    edges = np.arange(lo, hi + 1.0, 1.0)
    image = np.full((height, width, 3), 24, np.uint8)
    left, right, top, bottom, gap = 60, 20, 50, 50, 30
    plot_w, panel_h = width - left - right, (height - top - bottom - gap) // 2

    def x_of(ms: float) -> int:
        return int(left + (ms - lo) / (hi - lo) * plot_w)

    panels = ((before, (150, 150, 150), f"before: p95 {figures.p95(before):.1f} ms "
               f"(measured {_ms(figures.before.get('p95_abs_ms'))})"),
              (after, (95, 220, 120), f"after correction, as the sync check filmed it: p95 "
               f"{figures.p95(after):.1f} ms (measured {_ms(figures.after.get('p95_abs_ms'))})"))
    for k, (values, colour, label) in enumerate(panels):
        counts = np.histogram(values, bins=edges)[0]
        base = top + (k + 1) * panel_h + k * gap
        most = max(int(counts.max()), 1)
        for i, count in enumerate(counts):
            bar = int((panel_h - 20) * count / most)
            cv2.rectangle(image, (x_of(edges[i]), base - bar), (max(x_of(edges[i + 1]) - 1, x_of(edges[i])), base),
                          colour, -1)
        cv2.line(image, (x_of(0.0), base - panel_h + 20), (x_of(0.0), base), (60, 60, 240), 1)
        cv2.putText(image, label, (left, base - panel_h + 14), cv2.FONT_HERSHEY_SIMPLEX, 0.55, colour, 1,
                    cv2.LINE_AA)
    for ms in range(int(lo), int(hi) + 1, 10 if hi - lo <= 200 else 20):
        cv2.putText(image, str(ms), (x_of(ms) - 10, height - 28), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (220, 220, 220), 1, cv2.LINE_AA)
    cv2.putText(image, "light-output offset against the server clock (ms, positive = late; red: 0)",
                (left, height - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (220, 220, 220), 1, cv2.LINE_AA)
    title = (f"{figures.phones} phones, clock error {CLOCK_ERROR_MS:.0f} ms (1 sigma), displays "
             f"{LATENCY_MS[0]:.0f}-{LATENCY_MS[1]:.0f} ms slow: each phone's true offset")
    cv2.putText(image, title, (10, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    cv2.imwrite(str(path), image)
    return path
