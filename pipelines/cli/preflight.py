"""Settings checked before any command does work: one line per problem, never a traceback.

`WAREHOUSE_URL`, `STATE_DATABASE_URL` and `TIKTOK_RATE_LIMIT_URL` are checked for their form
(and driver), then the databases the command will use are opened once: a SQLite file that is not
a database, or is damaged, is named with what to do; a server that refuses us says why. Without
this, a bad URL surfaced as a Dagster step failure per connection, the cause deep in a traceback.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import click

from resources import settings
from resources.database import database_problem


def problems(
    environ: Mapping[str, str] = os.environ, *, warehouse: bool = True, state: bool = True
) -> list[str]:
    """Every reason the configured settings cannot work, one line each; [] when they can."""
    found = settings.setting_problems(environ)
    if found:
        return found  # opening a URL of the wrong form would only repeat it
    urls = []
    if state:
        urls.append(("STATE_DATABASE_URL", settings.state_database_url(environ)))
    if warehouse:
        urls.append(("WAREHOUSE_URL", settings.warehouse_url(environ)))
    return [line for variable, url in urls if (line := database_problem(variable, url))]


_checked: set[tuple[bool, bool]] = set()  # once per process, however many stores a command opens


def preflight(*, warehouse: bool = True, state: bool = True) -> None:
    """Stop the command with the problems (exit status 1) before it starts any work."""
    if (warehouse, state) in _checked:
        return
    found = problems(warehouse=warehouse, state=state)
    if found:
        raise click.ClickException("\n".join(found))
    _checked.add((warehouse, state))
