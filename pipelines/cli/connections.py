"""`connections ...`: the registry of authorized TikTok accounts."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click
from rich.console import Console
from rich.table import Table

from resources import settings
from resources.connections import ConnectionStore
from resources.database import make_engine


@click.group()
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
