"""Where the CLI writes: progress and reports to stderr, machine output to stdout."""

from rich.console import Console

console = Console(stderr=True)
