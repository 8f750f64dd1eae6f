"""`c3s blink-pattern NUMBER`: the colour sequence a pixel phone plays for the blink method."""

from __future__ import annotations

import json

import click

from c3s.vision.blink import N_NUMBERS, pattern

_NAMES = {
    (255, 255, 255): "white",
    (0, 0, 0): "black",
    (255, 0, 0): "red",
    (0, 255, 0): "green",
    (0, 0, 255): "blue",
    (255, 255, 0): "yellow",
    (0, 255, 255): "cyan",
    (255, 0, 255): "magenta",
}


@click.command("blink-pattern")
@click.argument("number", type=str)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def blink_pattern_command(number: str, as_json: bool) -> None:
    """Print the blink pattern of pixel NUMBER (0 .. 131071).

    During server time t_ms (Unix milliseconds) the phone shows slot
    floor(t_ms / slot_ms) mod n_slots, full screen.
    """
    try:
        value = int(number, 10)
    except ValueError:
        raise click.BadParameter(
            f"{number!r} is not a whole number; give a pixel number 0..{N_NUMBERS - 1}",
            param_hint="NUMBER",
        ) from None
    try:
        blink = pattern(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="NUMBER") from None
    colors = [[int(c) for c in rgb] for rgb in blink.colors]
    if as_json:
        click.echo(json.dumps({"number": value, "slot_ms": blink.slot_ms, "colors": colors}))
        return
    click.echo(
        f"pixel {value}: {len(colors)} slots of {blink.slot_ms:g} ms "
        f"(period {blink.period_ms / 1000:g} s), RGB"
    )
    for k, rgb in enumerate(colors):
        click.echo(f"  slot {k:2d}  {_NAMES.get(tuple(rgb), '?'):8s} {rgb}")
