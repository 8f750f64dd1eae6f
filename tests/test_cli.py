"""The `c3s` command line: every registered command loads, a registration without its module
fails loudly, and `c3s bench all` runs the real benchmarks."""

import json
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from c3s.bench import BENCHMARKS
from c3s.cli import COMMANDS, LazyGroup, load_command, main


@pytest.mark.parametrize(("name", "target"), sorted({**COMMANDS, **BENCHMARKS}.items()))
def test_every_registered_command_loads(name, target):
    assert isinstance(load_command(name, target), click.Command)


def test_a_registered_command_whose_module_is_missing_fails_loudly():
    @click.group(cls=LazyGroup, lazy_commands={"gone": "c3s.bench.no_such_module:command",
                                               "typo": "c3s.bench.seats:comand"})
    def group():
        """A group with two broken registrations."""

    runner = CliRunner()
    gone = runner.invoke(group, ["gone"])
    assert gone.exit_code == 1
    assert "'gone' is registered as c3s.bench.no_such_module:command" in gone.output
    assert "does not exist" in gone.output
    typo = runner.invoke(group, ["typo"])
    assert typo.exit_code == 1 and "has no click command 'comand'" in typo.output
    listing = runner.invoke(group, ["--help"])  # listed, not hidden: the listing fails as loudly
    assert listing.exit_code == 1 and "no_such_module" in listing.output


def test_bench_all_refuses_an_unknown_name():
    result = CliRunner().invoke(main, ["bench", "all", "--only", "nope"])
    assert result.exit_code == 2 and "no benchmark nope" in result.output


def test_bench_all_gathers_the_json_of_a_real_benchmark():
    done = subprocess.run([sys.executable, "-m", "c3s.cli", "bench", "all", "--only", "seats", "--quick", "--json"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    seats = report["benchmarks"]["seats"]
    assert report["quick"] is True and seats["ok"] is True
    assert seats["result"]["benchmark"] == "seats" and 0 <= seats["result"]["correct_fraction"] <= 1
