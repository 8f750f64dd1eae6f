"""Command-line commands of `c3s`, one module per command, loaded on first use."""
