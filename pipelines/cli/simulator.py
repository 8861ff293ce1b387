"""`simulator serve`: the TikTok API simulator as a standalone server."""

import click

from pipelines.cli.output import console


@click.group()
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
