"""Settings checked before any command does work: one line per problem, never a traceback.

`WAREHOUSE_URL`, `STATE_DATABASE_URL`, `TIKTOK_RATE_LIMIT_URL` and `SYNC_BATCH_SIZE` are checked for
their form (and driver), then the databases the command will use are opened once: a SQLite file that
is not a database, or is damaged, is named with what to do; a server that refuses us says why.
Without this, a bad URL surfaced as a Dagster step failure per connection, the cause deep in a
traceback.
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


# Once per process and settings, however many stores a command opens; settings that change
# (another command in the same process, a test) are checked again.
CHECKED_VARIABLES = (
    "TIKTOK_CRM_SYNC_MODE",
    "WAREHOUSE_URL",
    "STATE_DATABASE_URL",
    "TIKTOK_RATE_LIMIT_URL",
    settings.BATCH_VARIABLE,
    settings.RENAMED_BATCH_VARIABLE,
    settings.DEMO_WAREHOUSE_VARIABLE,
    settings.DEMO_STATE_VARIABLE,
)
_checked: set[tuple] = set()


def preflight(*, warehouse: bool = True, state: bool = True) -> None:
    """Stop the command with the problems (exit status 1) before it starts any work."""
    key = (
        warehouse,
        state,
        settings.warehouse_url(),
        settings.state_database_url(),
        *(os.environ.get(name) for name in CHECKED_VARIABLES),
    )
    if key in _checked:
        return
    found = problems(warehouse=warehouse, state=state)
    if found:
        raise click.ClickException("\n".join(found))
    _checked.add(key)
