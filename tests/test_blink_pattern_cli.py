"""`c3s blink-pattern NUMBER [--json]`."""

from __future__ import annotations

import json

from click.testing import CliRunner

from c3s.cli import main
from c3s.vision.blink import pattern


def test_json_output_matches_the_pattern():
    result = CliRunner().invoke(main, ["blink-pattern", "4242", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    expected = pattern(4242)
    assert data["number"] == 4242
    assert data["slot_ms"] == expected.slot_ms
    assert data["colors"] == expected.colors.tolist()


def test_text_output_names_every_slot():
    result = CliRunner().invoke(main, ["blink-pattern", "99999"])
    assert result.exit_code == 0, result.output
    assert "75 ms" in result.output and "1.2 s" in result.output
    assert result.output.count("slot ") == 16
    assert "white" in result.output and "black" in result.output


def test_bad_numbers_are_usage_errors():
    runner = CliRunner()
    for bad in ["131072", "abc", "1.5"]:
        result = runner.invoke(main, ["blink-pattern", bad])
        assert result.exit_code == 2
        assert "NUMBER" in result.output and "0..131071" in result.output
