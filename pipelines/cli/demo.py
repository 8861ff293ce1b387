"""`demo` and `ui`: the pipeline on simulated TikTok accounts, with no credentials."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import TYPE_CHECKING

import click
from rich.progress import Progress
from rich.table import Table

from pipelines.cli.output import console, failure_lines, say
from pipelines.cli.preflight import preflight
from pipelines.instance_home import PROJECT_YAML
from resources import settings
from resources.database import make_engine, redact_url

if TYPE_CHECKING:
    from pipelines.runner import SyncOutcome
    from simulators.tiktok import TikTokSimulator

DEFAULT_COUNT, DEFAULT_VIDEOS, DEFAULT_SEED = 5, 30, 42
DEV_SUPERSESSION_NOTICE = "Function `dev_command` is superseded"  # the start of its message


@click.command()
@click.option(
    "--connections", "count", default=DEFAULT_COUNT, show_default=True, help="Demo connections."
)
@click.option("--videos", default=DEFAULT_VIDEOS, show_default=True, help="Videos per account.")
@click.option(
    "--seed", default=DEFAULT_SEED, show_default=True, help="Seed of the simulated accounts."
)
@click.option(
    "--days",
    type=click.IntRange(1, 90),
    default=1,
    show_default=True,
    help="Daily syncs to simulate, ending today: creators post, edit and delete between them, so "
    "the snapshot tables and the UI's plots show a trend.",
)
@click.option(
    "--reset",
    is_flag=True,
    help="Delete the demo's home first (its connections, warehouse, runs and simulated days); "
    "the live home is never touched.",
)
def demo(count: int, videos: int, seed: int, days: int, reset: bool) -> None:
    """Run the daily sync on simulated TikTok accounts into the warehouse (no credentials)."""
    from pipelines import demo as demo_mode

    started = time.monotonic()
    if reset:
        say(f"deleted the demo's home {demo_mode.reset_demo()}")
    try:
        demo_mode.prepare_environment()
    except demo_mode.DemoRefused as err:
        raise click.ClickException(str(err)) from None
    preflight()
    console.print("[bold yellow]DEMO MODE[/]: simulated TikTok accounts, nothing leaves 127.0.0.1")

    import dagster as dg

    from pipelines.run_owner import reap_before_start
    from pipelines.runner import run_daily_sync

    today = datetime.now(UTC).date()
    session = demo_mode.continued(demo_mode.DemoSession(seed, count, videos))
    with session.running() as simulator:
        names = demo_mode.register_demo_connections(simulator, count)
        with dg.DagsterInstance.get() as instance, Progress(console=console) as progress:
            # Runs of an earlier demo whose process died would hold pool slots and leases.
            for line in reap_before_start(instance, settings.state_database_url()):
                say(line)
            task = progress.add_task("daily sync", total=len(names) * days)
            for day in range(days):
                if day:
                    simulator.advance_days(1)  # a day passes for the simulated creators
                    session = replace(session, days_lived=session.days_lived + 1)
                # Saved before the run: `ui` continues from the day whose snapshots exist.
                demo_mode.save_session(session)
                outcome = run_daily_sync(
                    instance,
                    names,
                    on_done=lambda _n, _ok: progress.advance(task),
                    sync_date=(today - timedelta(days=days - 1 - day)).isoformat(),
                    say=say,
                )
                if outcome.failed:
                    break
        api_calls = sum(endpoint["requests"] for endpoint in _endpoint_stats(simulator))
    _print_summary(outcome, api_calls, time.monotonic() - started)
    if days > 1:
        console.print(
            f"{days} days of history: chart it with [bold]tiktok-crm-sync chart --demo[/]"
        )
    if outcome.failed:
        raise SystemExit(1)


def _endpoint_stats(simulator: TikTokSimulator) -> list[dict]:
    stats = simulator.stats()
    return [value for value in stats.values() if isinstance(value, dict) and "requests" in value]


def _print_summary(outcome: SyncOutcome, api_calls: int, seconds: float) -> None:
    from resources.warehouse import tiktok_tables as tables
    from resources.warehouse.store import Warehouse
    from services.crm_records import warehouse_mappings

    warehouse_url = settings.warehouse_url()
    warehouse = Warehouse(make_engine(warehouse_url))
    names = [
        tables.PROFILES,
        tables.VIDEOS,
        tables.PROFILE_STATS_DAILY,
        tables.VIDEO_METRICS_DAILY,
        *[m.target.object for m in warehouse_mappings()],
    ]
    table = Table(title="Warehouse after the demo sync")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name in names:
        table.add_row(name, str(warehouse.count(name)) if warehouse.has_table(name) else "-")
    console.print(table)
    ok, failed = outcome.succeeded, outcome.failed
    console.print(f"connections synced: {len(ok)} ({', '.join(ok)})")
    for line in failure_lines(failed):
        say(line)
    console.print(
        f"TikTok API calls: {api_calls}, retries: {outcome.api_retries}, "
        f"rate-limited answers: {outcome.api_rate_limited}"
    )
    console.print(f"warehouse: {redact_url(warehouse_url)}")
    console.print(f"Dagster runs stored in DAGSTER_HOME={os.environ['DAGSTER_HOME']}")
    console.print(f"took {seconds:.1f} s. Open the UI on these runs: [bold]tiktok-crm-sync ui[/]")


@contextmanager
def ui_simulator(
    count: int | None = None, videos: int | None = None, seed: int | None = None
) -> Iterator[TikTokSimulator]:
    """The simulator `ui` runs: the last demo's world at its last day (so a materialization from
    the UI never writes an earlier day's numbers over a snapshot), its connections registered and
    their partitions added. Options given explicitly start another world."""
    import dagster as dg

    from pipelines import demo as demo_mode
    from pipelines.runner import add_partitions

    last = demo_mode.load_session() or demo_mode.DemoSession(
        DEFAULT_SEED, DEFAULT_COUNT, DEFAULT_VIDEOS
    )
    wanted = demo_mode.DemoSession(
        seed if seed is not None else last.seed,
        count if count is not None else last.accounts,
        videos if videos is not None else last.videos,
    )
    session = demo_mode.continued(wanted)
    with session.running() as simulator:
        names = demo_mode.register_demo_connections(simulator, session.accounts)
        with dg.DagsterInstance.get() as instance:
            # Partitions exist before the UI opens, not a sensor tick later.
            add_partitions(instance, names)
        yield simulator


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@click.command()
@click.option("--port", default=3000, show_default=True, help="Port of the Dagster UI.")
@click.option("--connections", "count", type=int, help="Demo connections [default: the demo's].")
@click.option("--videos", type=int, help="Videos per demo account [default: the demo's].")
@click.option("--seed", type=int, help="Seed of the simulated accounts [default: the demo's].")
def ui(port: int, count: int | None, videos: int | None, seed: int | None) -> None:
    """Open the Dagster UI in demo mode, with the simulator running for materializations."""
    from pipelines import demo as demo_mode

    try:
        demo_mode.prepare_environment()
    except demo_mode.DemoRefused as err:
        raise click.ClickException(str(err)) from None
    with ui_simulator(count, videos, seed):
        console.print(f"[bold yellow]DEMO MODE[/]: Dagster UI on http://127.0.0.1:{port}")
        # `dagster dev` tells its reader that `dg dev` supersedes it: a notice for the project's
        # maintainers, not for someone opening the demo. Only that notice, only in that one
        # process: the webserver, daemon, code servers and runs keep every warning.
        quiet = ["-W", f"ignore:{DEV_SUPERSESSION_NOTICE}:FutureWarning"]
        workspace = str(PROJECT_YAML.parent / "workspace.yaml")
        command = [sys.executable, *quiet, "-m", "dagster", "dev", "-w", workspace]
        command += ["-h", "127.0.0.1", "-p", str(port)]
        # Started in the demo's instance folder: from the checkout, `dagster dev` would warn that
        # the project's dagster.yaml there is not the instance's (the demo has its own).
        home = os.environ["DAGSTER_HOME"]
        # Restore Ctrl-C in the child even when this process was started with SIGINT ignored
        # (as shells do for background jobs): `dagster dev` stops only on SIGINT.
        child = subprocess.Popen(command, cwd=home, preexec_fn=_default_sigint)

        def _stop(_signum: int, _frame: FrameType | None) -> None:
            # `dagster dev` shuts its webserver, daemon and code servers down on SIGINT (Ctrl-C).
            child.send_signal(signal.SIGINT)

        signal.signal(signal.SIGTERM, _stop)
        try:
            child.wait()
        except KeyboardInterrupt:
            child.wait()
