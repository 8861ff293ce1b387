"""`sync`: the live daily sync, now, as real Dagster runs in the instance the schedule uses."""

from __future__ import annotations

import contextlib
import time

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pipelines.children import Children, may_split
from pipelines.cli.ending import finish
from pipelines.cli.output import console, failure_lines, say, stdout_console
from pipelines.cli.preflight import preflight
from resources import settings
from resources.database import make_engine


@click.command()
@click.argument("names", nargs=-1)
@click.option("--all", "all_active", is_flag=True, help="Every active connection.")
@click.option(
    "--mode",
    type=click.Choice(["full", "incremental"]),
    default=None,
    help="How videos are read (default: the sync policy, TIKTOK_SYNC_MODE, which is full).",
)
def sync(names: tuple[str, ...], all_active: bool, mode: str | None) -> None:
    """Run the daily sync now for NAMES (or --all), as Dagster runs you can see in the UI."""
    from pipelines.instance_home import InstanceNotConfigured, use_project_instance

    if bool(names) == all_active:
        raise click.UsageError("name the connections to sync, or pass --all (not both)")
    try:
        use_project_instance()
    except InstanceNotConfigured as err:
        raise click.ClickException(str(err)) from None
    # A fleet is several runs: the child processes of the others start now and import Dagster
    # while this one does (with --all before the fleet is counted: unneeded, they just exit).
    children = Children() if may_split(None if all_active else len(names)) else None
    with children or contextlib.nullcontext():
        code = _choose_and_run(names, all_active, mode, children)
    finish(code, children)


def _choose_and_run(
    names: tuple[str, ...], all_active: bool, mode: str | None, children: Children | None
) -> int:
    from pipelines.defs.tiktok.live import leave_out_demo, left_out_line
    from resources.connections.store import ACTIVE, ConnectionStore

    preflight()
    store = ConnectionStore(make_engine(settings.state_database_url()))
    known = {connection.name: connection for connection in store.list()}
    if all_active:
        chosen, left_out = leave_out_demo(c for c in known.values() if c.status == ACTIVE)
        if left_out:
            say(left_out_line(left_out))
        if not chosen:
            raise click.ClickException(
                "no active connection: add one with `tiktok-crm-sync connections connect NAME`"
            )
    else:
        unknown = [name for name in names if name not in known]
        if unknown:
            raise click.ClickException(
                f"unknown connection(s): {', '.join(unknown)}. `tiktok-crm-sync connections "
                "list` shows the registered ones"
            )
        chosen = list(dict.fromkeys(names))
        _, demo = leave_out_demo(known[name] for name in chosen)
        if demo:
            raise click.ClickException(
                f"{', '.join(demo)}: demo connection(s), synced only by `tiktok-crm-sync demo`"
            )
    return _run(chosen, mode, children)


def _run(names: list[str], mode: str | None, children: Children | None) -> int:
    """The exit code: 1 when a connection failed."""
    import dagster as dg

    from pipelines.run_owner import reap_before_start
    from pipelines.runner import run_daily_sync

    started = time.monotonic()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with dg.DagsterInstance.get() as instance:
        # Runs whose process died (killed, crashed) would hold pool slots and leases forever.
        for line in reap_before_start(instance, settings.state_database_url()):
            say(line)
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("syncing", total=len(names))
            outcome = run_daily_sync(
                instance,
                names,
                on_done=lambda _name, _ok: progress.advance(task),
                mode=mode,
                say=say,
                children=children,
            )
    out = stdout_console()
    out.print(f"synced {len(outcome.succeeded)} of {len(names)} connections")
    for asset, rows in sorted(outcome.rows.items()):
        out.print(f"  {asset}: {rows} rows")
    out.print(
        f"TikTok API calls: {outcome.api_requests}, retries: {outcome.api_retries}, "
        f"rate-limited answers: {outcome.api_rate_limited}"
    )
    out.print(f"Dagster runs: {', '.join(outcome.run_ids)}")
    for line in failure_lines(outcome.failed):
        say(line)
    say(f"took {time.monotonic() - started:.1f} s")
    return 1 if outcome.failed else 0
