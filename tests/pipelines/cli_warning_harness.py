"""`python -m tests.pipelines.cli_warning_harness ENTRY ARGS...`: a CLI command during which
libraries warn, as Dagster does when a definition uses a beta, preview or superseded API.

ENTRY `main` runs the command through the CLI's entry point (`tiktok-crm-sync ARGS`); `group`
runs the same command group without it, which is what the filter must make the difference to.
"""

import importlib
import sys
import warnings

from dagster import BetaWarning, PreviewWarning, SupersessionWarning

from pipelines.cli import main

LIBRARY_WARNINGS = (SupersessionWarning, BetaWarning, PreviewWarning, DeprecationWarning)
connections = importlib.import_module("pipelines.cli.connections")
registry = importlib.import_module("pipelines.cli.registry")
real_store = registry.store


def warning_store():
    # Attributed to a library module, as Dagster's own warnings are.
    for category in LIBRARY_WARNINGS:
        message = f"library notice: {category.__name__}"
        warnings.warn_explicit(message, category, "dagster/_core/defs.py", 1, module="dagster.x")
    return real_store()


if __name__ == "__main__":
    registry.store = warning_store
    entry, args = sys.argv[1], sys.argv[2:]
    if entry == "main":
        main(args)
    else:
        connections.connections(args[1:])
