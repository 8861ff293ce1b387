"""`demo` and `ui`: the pipeline on simulated TikTok accounts, with no credentials."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType

import click
from rich.progress import Progress
from rich.table import Table

from pipelines.cli.output import console
from pipelines.cli.preflight import preflight
from pipelines.runner import SyncOutcome
from resources import settings
from resources.database import make_engine, redact_url
from simulators.tiktok import TikTokSimulator


@click.command()
@click.option("--connections", "count", default=5, show_default=True, help="Demo connections.")
@click.option("--videos", default=30, show_default=True, help="Videos per demo account.")
@click.option("--seed", default=42, show_default=True, help="Seed of the simulated accounts.")
@click.option(
    "--days",
    type=click.IntRange(1, 90),
    default=1,
    show_default=True,
    help="Daily syncs to simulate, ending today: creators post, edit and delete between them, so "
    "the snapshot tables and the UI's plots show a trend.",
)
def demo(count: int, videos: int, seed: int, days: int) -> None:
    """Run the daily sync on simulated TikTok accounts into the warehouse (no credentials)."""
    from pipelines import demo as demo_mode

    started = time.monotonic()
    try:
        demo_mode.prepare_environment()
    except demo_mode.DemoRefused as err:
        raise click.ClickException(str(err)) from None
    preflight()
    console.print("[bold yellow]DEMO MODE[/]: simulated TikTok accounts, nothing leaves 127.0.0.1")

    import dagster as dg

    from pipelines.runner import run_daily_sync

    today = datetime.now(UTC).date()
    with demo_mode.running_simulator(seed, count, videos) as simulator:
        names = demo_mode.register_demo_connections(simulator, count)
        with dg.DagsterInstance.get() as instance, Progress(console=console) as progress:
            task = progress.add_task("daily sync", total=len(names) * days)
            for day in range(days):
                if day:
                    simulator.advance_days(1)  # a day passes for the simulated creators
                outcome = run_daily_sync(
                    instance,
                    names,
                    on_done=lambda _n, _ok: progress.advance(task),
                    sync_date=(today - timedelta(days=days - 1 - day)).isoformat(),
                )
                if outcome.failed:
                    break
        api_calls = sum(endpoint["requests"] for endpoint in _endpoint_stats(simulator))
    _print_summary(outcome, api_calls, time.monotonic() - started)
    if days > 1:
        console.print(
            f"{days} days of history: chart it with [bold]tiktok-crm-sync chart "
            "--out followers.svg[/]"
        )
    if outcome.failed:
        raise SystemExit(1)


def _endpoint_stats(simulator: TikTokSimulator) -> list[dict]:
    stats = simulator.stats()
    return [value for value in stats.values() if isinstance(value, dict) and "requests" in value]


def _print_summary(outcome: SyncOutcome, api_calls: int, seconds: float) -> None:
    from resources.warehouse import Warehouse
    from services import tables
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
    for name, reason in failed.items():
        console.print(f"[red]connection {name} failed[/]: {reason}")
    console.print(
        f"TikTok API calls: {api_calls}, retries: {outcome.api_retries}, "
        f"rate-limited answers: {outcome.api_rate_limited}"
    )
    console.print(f"warehouse: {redact_url(warehouse_url)}")
    console.print(f"Dagster runs stored in DAGSTER_HOME={os.environ['DAGSTER_HOME']}")
    console.print(f"took {seconds:.1f} s. Open the UI on these runs: [bold]tiktok-crm-sync ui[/]")


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@click.command()
@click.option("--port", default=3000, show_default=True, help="Port of the Dagster UI.")
@click.option("--connections", "count", default=5, show_default=True)
@click.option("--videos", default=30, show_default=True)
@click.option("--seed", default=42, show_default=True)
def ui(port: int, count: int, videos: int, seed: int) -> None:
    """Open the Dagster UI in demo mode, with the simulator running for materializations."""
    from pipelines import demo as demo_mode

    try:
        demo_mode.prepare_environment()
    except demo_mode.DemoRefused as err:
        raise click.ClickException(str(err)) from None
    import dagster as dg

    from pipelines.runner import add_partitions

    with demo_mode.running_simulator(seed, count, videos) as simulator:
        names = demo_mode.register_demo_connections(simulator, count)
        with dg.DagsterInstance.get() as instance:
            # Partitions exist before the UI opens, not a sensor tick later.
            add_partitions(instance, names)
        console.print(f"[bold yellow]DEMO MODE[/]: Dagster UI on http://127.0.0.1:{port}")
        command = [sys.executable, "-m", "dagster", "dev", "-h", "127.0.0.1", "-p", str(port)]
        # Restore Ctrl-C in the child even when this process was started with SIGINT ignored
        # (as shells do for background jobs): `dagster dev` stops only on SIGINT.
        child = subprocess.Popen(command, cwd=Path.cwd(), preexec_fn=_default_sigint)

        def _stop(_signum: int, _frame: FrameType | None) -> None:
            # `dagster dev` shuts its webserver, daemon and code servers down on SIGINT (Ctrl-C).
            child.send_signal(signal.SIGINT)

        signal.signal(signal.SIGTERM, _stop)
        try:
            child.wait()
        except KeyboardInterrupt:
            child.wait()
