"""The `c3s` command. Subcommands live in their own modules and are imported only when used,
so `c3s --help` stays fast and a command's heavy dependencies load only for that command."""

from __future__ import annotations

import importlib
import importlib.util

import click

from c3s.bench import BENCHMARKS


class LazyGroup(click.Group):
    """A click group whose subcommands are `module:attribute` strings imported on demand."""

    def __init__(self, *args, lazy_commands: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy_commands = lazy_commands or {}

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(self.lazy_commands))

    def get_command(self, ctx, name):
        command = super().get_command(ctx, name)
        if command is not None:
            return command
        target = self.lazy_commands.get(name)
        if target is None:
            return None
        return load_command(name, target)


def load_command(name: str, target: str) -> click.Command:
    """The command a ``module:attribute`` target names; a registered command whose module or
    attribute is missing is an error of this package, said loudly rather than hidden."""
    module_name, _, attribute = target.partition(":")
    try:
        spec = importlib.util.find_spec(module_name)
    except ModuleNotFoundError:  # a parent package is missing too
        spec = None
    if spec is None:
        raise click.ClickException(f"the command {name!r} is registered as {target}, but the module "
                                   f"{module_name} does not exist")
    command = getattr(importlib.import_module(module_name), attribute, None)
    if not isinstance(command, click.Command):
        raise click.ClickException(f"the command {name!r} is registered as {target}, but {module_name} "
                                   f"has no click command {attribute!r}")
    return command


COMMANDS = {
    "init-db": "c3s.commands.db:init_db_command",
    "create-admin": "c3s.commands.admin:create_admin_command",
    "grant": "c3s.commands.admin:grant_command",
    "serve": "c3s.commands.serve:serve_command",
    "worker": "c3s.commands.worker:worker_command",
    "locate": "c3s.commands.locate:locate_command",
    "blink-pattern": "c3s.commands.blink_pattern:blink_pattern_command",
    "sound-tracks": "c3s.commands.sound_tracks:sound_tracks_command",
    "demo": "c3s.commands.demo:demo_command",
    "bench": "c3s.cli:bench",
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
