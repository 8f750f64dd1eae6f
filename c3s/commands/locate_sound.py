"""`c3s locate --method sound`: recordings of a venue's chirps located offline (see `c3s.commands.locate`).

Each detection is ``{"input", "x_scene", "y_scene", "z_scene", "uncertainty_m", "uncertainty_z_m",
"placed", "speakers_heard", "chirps_heard", "clock_offset_ms", "sample_rate_error_ppm",
"speed_of_sound_m_s"}`` (scene units for positions, metres for uncertainties; ``placed`` is false
when the uncertainty exceeds half a seat: such a fix must not be snapped to a seat), or
``{"input", "reason"}`` when no fix was made.
"""

from __future__ import annotations

import click

MAX_CLOCK_OFFSET_MS = 250.0


def read_recordings(paths: tuple[str, ...], start_ms: float):
    from c3s.commands.locate import read_bytes
    from c3s.positioning.sound import SoundError, parse_wav

    out = []
    for path in paths:
        try:
            out.append((path, parse_wav(read_bytes(path), start_ms=start_ms)))
        except SoundError as exc:
            out.append((path, str(exc)))
    return out


def locate_sound(recordings, venue, schedule_start_ms: float, metres_per_unit: float) -> list[dict]:
    from c3s.positioning.sound import SoundError
    from c3s.positioning.venue_sound import locate_in_venue, schedule_around

    rows = []
    for name, recording in recordings:
        if isinstance(recording, str):
            rows.append({"input": name, "reason": recording})
            continue
        duration_ms = len(recording.samples) / recording.sample_rate * 1000
        try:
            schedule = schedule_around(venue, schedule_start_ms, recording.start_ms, duration_ms,
                                       MAX_CLOCK_OFFSET_MS)
            fix = locate_in_venue(recording, venue, schedule, max_clock_offset_ms=MAX_CLOCK_OFFSET_MS)
        except SoundError as exc:
            rows.append({"input": name, "reason": str(exc)})
            continue
        rows.append({
            "input": name,
            "x_scene": round(fix.x / metres_per_unit, 4), "y_scene": round(fix.y / metres_per_unit, 4),
            "z_scene": round(fix.z / metres_per_unit, 4),
            "uncertainty_m": round(fix.uncertainty_m, 4), "uncertainty_z_m": round(fix.uncertainty_z_m, 4),
            "placed": fix.placed, "speakers_heard": fix.speakers_heard, "chirps_heard": fix.chirps_heard,
            "clock_offset_ms": round(fix.clock_offset_ms, 3),
            "sample_rate_error_ppm": round(fix.sample_rate_error_ppm, 2),
            "speed_of_sound_m_s": round(fix.speed_of_sound_m_s, 2),
        })
    return rows


def print_sound_table(result: dict) -> None:
    rows = result["detections"]
    placed = sum(1 for d in rows if d.get("placed"))
    click.echo(f"{placed} of {len(rows)} recording(s) placed by sound in {result['elapsed_ms']:.1f} ms")
    for d in rows:
        if "reason" in d:
            click.echo(f"{d['input'][-24:]:<24} no fix: {d['reason']}")
        else:
            state = "placed" if d["placed"] else "uncertain (not placed)"
            click.echo(f"{d['input'][-24:]:<24} x {d['x_scene']:.3f} y {d['y_scene']:.3f} "
                       f"z {d['z_scene']:.3f}  +-{d['uncertainty_m']:.3f} m  {state}")
