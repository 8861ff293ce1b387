"""`simulator serve`: the TikTok API simulator as a standalone server, to rehearse the live path."""

import sys

import click

from pipelines.cli.output import say


def rehearsal_exports(base_url: str) -> list[str]:
    """What to export in another shell so the live commands talk to this simulator."""
    from resources.connections.crypto import GENERATE_KEY_HINT, TOKEN_KEYS_VAR
    from simulators.tiktok.config import REHEARSAL_CLIENT_KEY, REHEARSAL_CLIENT_SECRET

    return [
        f"export TIKTOK_CLIENT_KEY={REHEARSAL_CLIENT_KEY}",
        f"export TIKTOK_CLIENT_SECRET={REHEARSAL_CLIENT_SECRET}",
        f"export TIKTOK_API_BASE_URL={base_url}",
        f"export TIKTOK_AUTH_BASE_URL={base_url}",
        f"# and {TOKEN_KEYS_VAR}, if not set yet: {GENERATE_KEY_HINT}",
    ]


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
    from simulators.tiktok.config import (
        DEMO_CLIENT_KEY,
        DEMO_CLIENT_SECRET,
        REHEARSAL_CLIENT_KEY,
        REHEARSAL_CLIENT_SECRET,
    )

    base_url = f"http://127.0.0.1:{port}"
    say(f"TikTok simulator on {base_url} (seed {seed}); Ctrl-C stops it")
    say("To rehearse the live path against it, in another shell:")
    for line in rehearsal_exports(base_url):
        click.echo(line)  # stdout, whole: meant to be copied or eval'ed
    sys.stdout.flush()  # seen at once through a pipe, before the server blocks
    apps = {DEMO_CLIENT_KEY: DEMO_CLIENT_SECRET, REHEARSAL_CLIENT_KEY: REHEARSAL_CLIENT_SECRET}
    config = SimulatorConfig(seed=seed, accounts=accounts, videos_per_account=videos, apps=apps)
    serve(config, port=port)
