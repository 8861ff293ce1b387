"""`tiktok-crm-sync`: the demo, the simulator, the local UI and connection management."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from resources import settings
from resources.connections import ConnectionStore
from resources.database import make_engine, redact_url

console = Console(stderr=True)


@click.group()
def main() -> None:
    """Sync TikTok creator profiles and videos into a warehouse or a CRM, on Dagster."""


@main.command()
@click.option("--connections", "count", default=5, show_default=True, help="Demo connections.")
@click.option("--videos", default=30, show_default=True, help="Videos per demo account.")
@click.option("--seed", default=42, show_default=True, help="Seed of the simulated accounts.")
def demo(count: int, videos: int, seed: int) -> None:
    """Run the daily sync on simulated TikTok accounts into the warehouse (no credentials)."""
    from pipelines import demo as demo_mode

    started = time.monotonic()
    try:
        demo_mode.prepare_environment()
    except demo_mode.DemoRefused as err:
        raise click.ClickException(str(err)) from None
    console.print("[bold yellow]DEMO MODE[/]: simulated TikTok accounts, nothing leaves 127.0.0.1")

    import dagster as dg

    from pipelines.runner import run_daily_sync

    with demo_mode.running_simulator(seed, count, videos) as simulator:
        names = demo_mode.register_demo_connections(simulator, count)
        with dg.DagsterInstance.get() as instance, Progress(console=console) as progress:
            task = progress.add_task("daily sync", total=len(names))
            outcome = run_daily_sync(
                instance, names, on_done=lambda _n, _ok: progress.advance(task)
            )
        api_calls = sum(endpoint["requests"] for endpoint in _endpoint_stats(simulator))
    _print_summary(outcome, api_calls, time.monotonic() - started)
    if outcome.failed:
        raise SystemExit(1)


def _endpoint_stats(simulator: object) -> list[dict]:
    stats = simulator.stats()  # type: ignore[attr-defined]
    return [value for value in stats.values() if isinstance(value, dict) and "requests" in value]


def _print_summary(outcome: object, api_calls: int, seconds: float) -> None:
    from pipelines.defs.crm.assets import warehouse_mappings
    from pipelines.defs.tiktok import tables
    from resources.warehouse import Warehouse

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
    ok, failed = outcome.succeeded, outcome.failed  # type: ignore[attr-defined]
    console.print(f"connections synced: {len(ok)} ({', '.join(ok)})")
    for name, reason in failed.items():
        console.print(f"[red]connection {name} failed[/]: {reason}")
    console.print(
        f"TikTok API calls: {api_calls}, retries: {outcome.api_retries}, "  # type: ignore[attr-defined]
        f"rate-limited answers: {outcome.api_rate_limited}"  # type: ignore[attr-defined]
    )
    console.print(f"warehouse: {redact_url(warehouse_url)}")
    console.print(f"Dagster runs stored in DAGSTER_HOME={os.environ['DAGSTER_HOME']}")
    console.print(f"took {seconds:.1f} s. Open the UI on these runs: [bold]tiktok-crm-sync ui[/]")


@main.command()
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
    with demo_mode.running_simulator(seed, count, videos) as simulator:
        demo_mode.register_demo_connections(simulator, count)
        console.print(f"[bold yellow]DEMO MODE[/]: Dagster UI on http://127.0.0.1:{port}")
        command = [sys.executable, "-m", "dagster", "dev", "-h", "127.0.0.1", "-p", str(port)]
        subprocess.run(command, check=False, cwd=Path.cwd())


@main.group()
def simulator() -> None:
    """The built-in TikTok API simulator."""


@simulator.command("serve")
@click.option("--port", default=8642, show_default=True)
@click.option("--accounts", default=5, show_default=True)
@click.option("--videos", default=30, show_default=True)
@click.option("--seed", default=42, show_default=True)
def simulator_serve(port: int, accounts: int, videos: int, seed: int) -> None:
    """Serve the TikTok OAuth and Display API v2 simulator on 127.0.0.1 until Ctrl-C."""
    from simulators.tiktok import SimulatorConfig, serve

    console.print(f"TikTok simulator on http://127.0.0.1:{port} (seed {seed}); Ctrl-C stops it")
    serve(SimulatorConfig(seed=seed, accounts=accounts, videos_per_account=videos), port=port)


@main.group()
def connections() -> None:
    """Registered TikTok connections."""


@connections.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def connections_list(as_json: bool) -> None:
    """Name, account, scopes, status, token expiry and last sync of every connection."""
    store = ConnectionStore(make_engine(settings.state_database_url()))
    rows = [
        {
            "name": c.name,
            "app": c.app,
            "open_id": c.open_id,
            "display_name": c.display_name,
            "scopes": sorted(c.scopes),
            "status": c.status,
            "status_reason": c.status_reason,
            "access_token_expires_at": _iso(c.access_expires_at),
            "refresh_token_expires_at": _iso(c.refresh_expires_at),
            "last_synced_at": _iso(c.last_synced_at),
        }
        for c in store.list()
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    table = Table(title="TikTok connections")
    for column in ("name", "display_name", "scopes", "status", "last_synced_at"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["name"],
            row["display_name"] or "",
            ",".join(row["scopes"]),
            row["status"],
            row["last_synced_at"] or "never",
        )
    Console().print(table)


def _iso(epoch: float | None) -> str | None:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds") if epoch else None


if __name__ == "__main__":
    main()
