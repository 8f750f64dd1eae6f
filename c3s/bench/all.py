"""`c3s bench all`: every other registered benchmark, one after the other, each in its own
process (so one's memory and threads never skew the next), with its results under its name."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import click

from c3s.bench import BENCHMARKS


def _has_quick(name: str) -> bool:
    import importlib

    module, _, attribute = BENCHMARKS[name].partition(":")
    return any(param.name == "quick" for param in getattr(importlib.import_module(module), attribute).params)


def _run(name: str, quick: bool) -> dict:
    quick = quick and _has_quick(name)  # a benchmark without a smoke mode runs as it is
    argv = [sys.executable, "-m", "c3s.cli", "bench", name, "--json", *(["--quick"] if quick else [])]
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    seconds = round(time.perf_counter() - started, 1)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        return {"ok": False, "seconds": seconds, "reason": "\n".join(tail) or f"exit status {done.returncode}"}
    result = _last_json_object(done.stdout)
    if result is None:
        return {"ok": False, "seconds": seconds, "reason": "it printed no JSON object"}
    return {"ok": True, "seconds": seconds, "quick": quick, "result": result}


def _last_json_object(text: str) -> dict | None:
    """The last JSON object that starts a line and runs to the end of the output."""
    starts = [0] + [i + 1 for i, char in enumerate(text) if char == "\n"]
    for start in reversed(starts):
        if text.startswith("{", start):
            try:
                value = json.loads(text[start:])
            except json.JSONDecodeError:
                continue
            return value if isinstance(value, dict) else None
    return None


@click.command("all")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
@click.option("--quick", is_flag=True, help="Run every benchmark in its --quick smoke mode.")
@click.option("--only", multiple=True, metavar="NAME", help="Run only these benchmarks (repeatable).")
def command(as_json: bool, quick: bool, only: tuple[str, ...]):
    """Run every benchmark with `--json` and gather their results; exits 1 when one fails."""
    names = [name for name in BENCHMARKS if name != "all"]
    unknown = sorted(set(only) - set(names))
    if unknown:
        raise click.BadParameter(f"no benchmark {', '.join(unknown)}; known: {', '.join(names)}",
                                 param_hint="--only")
    report = {}
    for name in names:
        if only and name not in only:
            continue
        if not as_json:
            click.echo(f"bench {name} ...", err=True)
        report[name] = _run(name, quick)
        if not as_json:
            outcome = "ok" if report[name]["ok"] else f"FAILED: {report[name]['reason']}"
            click.echo(f"  {outcome} ({report[name]['seconds']} s)", err=True)
    if as_json:
        click.echo(json.dumps({"quick": quick, "benchmarks": report}))
    else:
        for name, outcome in report.items():
            if outcome["ok"]:
                click.echo(f"{name}: {json.dumps(outcome['result'])}")
    if not all(outcome["ok"] for outcome in report.values()):
        sys.exit(1)
