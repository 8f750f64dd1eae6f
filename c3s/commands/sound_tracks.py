"""`c3s sound-tracks`: the WAV each speaker of a venue loops, offline, with no database.

Contract::

    c3s sound-tracks --venue VENUE.json --out DIR

writes ``DIR/speaker-K.wav`` for every speaker K (0, 1, ... in the venue's schedule order): 16-bit
mono 48 kHz, exactly one schedule period long, to be looped by speaker K from server time
``schedule_start_ms`` on (each speaker's own ``speaker_delay_ms`` is the sound system's, not in
the file).

VENUE.json: ``units`` ("m" or "ft"), ``speakers`` [[x, y, z], ...] in schedule order,
``schedule_start_ms``, ``temperature_c`` (a reading or [min, max]), optionally ``seats``
[[x, y, z], ...] (where phones can be, z their height), ``speaker_delay_ms`` (one per speaker),
``humidity_pct`` (a value or [min, max]; unknown by default) and ``seat_width_m`` (0.5: a fix
less sure than half of it is reported as not placed).
"""

from __future__ import annotations

import json
import os

import click

UNITS_IN_METRES = {"m": 1.0, "ft": 0.3048}


def read_venue(path: str):
    """The venue of a VENUE.json file and its schedule start, or a `click.UsageError` saying what
    is wrong with it."""
    from c3s.commands.locate import read_json
    from c3s.positioning.venue_sound import venue_from_json

    raw = read_json(path, "venue")
    units = raw.get("units", "m") if isinstance(raw, dict) else None
    if units not in UNITS_IN_METRES:
        raise click.UsageError(f'{path!r}: "units" must be "m" or "ft", got {json.dumps(units)}')
    start = raw.get("schedule_start_ms")
    if not isinstance(start, int | float) or isinstance(start, bool) or not start >= 0:
        raise click.UsageError(f"{path!r}: schedule_start_ms must be a non-negative number (server ms)")
    try:
        venue = venue_from_json(raw, metres_per_unit=UNITS_IN_METRES[units])
    except ValueError as exc:
        raise click.UsageError(f"{path!r}: {exc}") from None
    return venue, float(start), UNITS_IN_METRES[units]


@click.command("sound-tracks")
@click.option("--venue", "venue_file", required=True, metavar="VENUE.json",
              help='{"units": "m", "speakers": [[x, y, z], ...], "schedule_start_ms": MS, '
                   '"temperature_c": T or [min, max], optional "seats", "speaker_delay_ms"}.')
@click.option("--out", "out_dir", required=True, metavar="DIR",
              help="Folder for speaker-K.wav (created if missing).")
def sound_tracks_command(venue_file: str, out_dir: str) -> None:
    """Write one looping chirp track per speaker for the sound method."""
    from c3s.positioning.sound import Recording, recording_wav
    from c3s.positioning.venue_sound import speaker_period_track, venue_schedule

    venue, start_ms, _ = read_venue(venue_file)
    os.makedirs(out_dir, exist_ok=True)
    rate = 48000
    for k in range(len(venue.speakers)):
        track = speaker_period_track(venue, k, rate) * 0.5
        path = os.path.join(out_dir, f"speaker-{k}.wav")
        with open(path, "wb") as handle:
            handle.write(recording_wav(Recording(track.astype("float32"), rate, start_ms)))
    schedule = venue_schedule(venue, start_ms)
    click.echo(f"wrote {len(venue.speakers)} tracks of {schedule.period_ms:g} ms (slot "
               f"{schedule.slot_ms:g} ms) to {out_dir}; loop speaker K's from {start_ms:.0f} ms on")
