"""Benchmarks behind `c3s bench NAME`: each module exposes a click command named `command`."""
