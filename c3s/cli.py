"""The `c3s` command. Subcommands live in their own modules and are imported only when used,
so `c3s --help` stays fast and a command's heavy dependencies load only for that command."""

from __future__ import annotations

import importlib
import importlib.util

import click


class LazyGroup(click.Group):
    """A click group whose subcommands are `module:attribute` strings imported on demand."""

    def __init__(self, *args, lazy_commands: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy_commands = lazy_commands or {}

    def _available(self) -> dict[str, str]:
        return {
            name: target
            for name, target in self.lazy_commands.items()
            if importlib.util.find_spec(target.partition(":")[0]) is not None
        }

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(self._available()))

    def get_command(self, ctx, name):
        command = super().get_command(ctx, name)
        if command is not None:
            return command
        target = self._available().get(name)
        if target is None:
            return None
        module_name, _, attribute = target.partition(":")
        return getattr(importlib.import_module(module_name), attribute)


COMMANDS = {
    "init-db": "c3s.commands.db:init_db_command",
    "serve": "c3s.commands.serve:serve_command",
    "worker": "c3s.commands.worker:worker_command",
    "locate": "c3s.commands.locate:locate_command",
    "blink-pattern": "c3s.commands.blink_pattern:blink_pattern_command",
    "demo": "c3s.commands.demo:demo_command",
    "bench": "c3s.cli:bench",
}

BENCHMARKS = {
    "qr": "c3s.bench.qr:command",
    "blink": "c3s.bench.blink:command",
    "colormap": "c3s.bench.colormap:command",
    "api": "c3s.bench.api:command",
    "join": "c3s.bench.join:command",
    "seats": "c3s.bench.seats:command",
    "sound": "c3s.bench.sound:command",
    "homography": "c3s.bench.homography:command",
    "locate": "c3s.bench.locate:command",
}


@click.group(cls=LazyGroup, lazy_commands=COMMANDS)
@click.version_option(package_name="c3s")
def main():
    """C3S: turn a crowd's phones into one giant screen.

    `c3s serve` runs the API; `c3s demo` plays a whole simulated show; `c3s bench NAME --json`
    measures one part against its simplest baseline.
    """


@click.group(cls=LazyGroup, lazy_commands=BENCHMARKS)
def bench():
    """Measure speed and quality; each prints JSON with `--json` and reports a baseline ratio."""


if __name__ == "__main__":
    main()
