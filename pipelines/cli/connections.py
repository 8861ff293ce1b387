"""`connections ...`: authorize, list, reconnect, disconnect and import TikTok connections.

Progress and reports go to stderr, `--json` output to stdout. No command prints a token: errors
carry the connection, the app and TikTok's error code, never a token's text.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.console import Console
from rich.text import Text

from pipelines.cli import registry
from pipelines.cli.authorize import connections_connect, connections_reconnect
from pipelines.cli.output import say, stdout_console
from resources import settings
from resources.connections.audit import KEY_ROTATED
from resources.connections.importer import ImportFileError, import_entries, read_entries
from resources.connections.lifecycle import RegistrationRefused, disconnect
from resources.connections.oauth_flow import (
    AuthorizationError,
)
from resources.connections.store import ACTIVE, NEEDS_RECONNECT, Connection
from resources.connections.webhooks import (
    WebhookRejected,
    configured_apps,
    handle_authorization_removed,
)
from resources.database import make_engine
from resources.tiktok.apps import DEMO_APP, MissingSecret
from resources.tiktok.errors import TikTokError
from resources.tiktok.oauth import OAuthClient

REFRESH_WARNING_DAYS = 14
_USER_ERRORS = (
    AuthorizationError,
    RegistrationRefused,
    ImportFileError,
    MissingSecret,  # includes TokenKeyError: a missing or wrong TIKTOK_CRM_SYNC_TOKEN_KEYS
    WebhookRejected,
    TikTokError,
    LookupError,
    ValueError,
)


# `connections list`: one block per connection, a label column, then each value whole.
_LABEL_WIDTH = 15
_STATUS_STYLES = {ACTIVE: "green", NEEDS_RECONNECT: "bold red"}


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except _USER_ERRORS as err:
            raise click.ClickException(str(err)) from None


@click.group(cls=_Group)
def connections() -> None:
    """Registered TikTok connections: one authorized account each, one Dagster partition each."""


connections.add_command(connections_connect)
connections.add_command(connections_reconnect)


@connections.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON on stdout.")
@click.option(
    "--warn-days",
    default=REFRESH_WARNING_DAYS,
    show_default=True,
    help="Warn when a refresh token expires within this many days.",
)
def connections_list(as_json: bool, warn_days: int) -> None:
    """Name, account, scopes, status, token expiry and last sync of every connection."""
    now = time.time()
    rows = [_row(c, now, warn_days) for c in registry.store().list()]
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    out = stdout_console()
    for index, row in enumerate(rows):
        if index:
            out.print()
        _print_connection(out, row)
    if not rows:
        say("no connections yet: add one with `tiktok-crm-sync connections connect NAME`")
    for row in rows:
        if row["refresh_warning"]:
            say(f"warning: {row['refresh_warning']}")


def _print_connection(out: Console, row: dict) -> None:
    """One block per connection, each value whole on its own line (no table: at 80 columns a
    table cuts ids and scopes to `big_cr…`); 80 columns hold it for usual values. Names, ids,
    scopes and the reconnect command are meant to be copied; piped, it is the same plain text."""
    status = Text(row["status"], style=_STATUS_STYLES.get(row["status"], "yellow"))
    if row["status_reason"]:
        status.append(f" ({row['status_reason']})")
    out.print(Text.assemble((row["name"], "bold"), "  ", status))
    needs_reconnect = row["status"] == NEEDS_RECONNECT
    fields = [("reconnect", reconnect_command(row["name"]))] if needs_reconnect else []
    days_left = row["refresh_token_days_left"]
    refresh = row["refresh_token_expires_at"] or "-"
    if days_left is not None:
        refresh += " (expired)" if days_left <= 0 else f" ({days_left:.0f} days left)"
    fields += [
        ("open_id", row["open_id"] or "-"),
        ("display name", row["display_name"] or "-"),
        ("scopes", ",".join(row["scopes"]) or "-"),
        ("access until", row["access_token_expires_at"] or "-"),
        ("refresh until", refresh),
        ("last sync", row["last_synced_at"] or "never"),
    ]
    for label, value in fields:
        out.print(Text(f"  {label:<{_LABEL_WIDTH}}{value}"))


def reconnect_command(name: str) -> str:
    return f"tiktok-crm-sync connections reconnect {name}"


def _row(c: Connection, now: float, warn_days: int) -> dict:
    days_left = (c.refresh_expires_at - now) / 86_400 if c.has_tokens else None
    warning = None
    if days_left is not None and days_left <= warn_days:
        when = "has expired" if days_left <= 0 else f"expires in {days_left:.0f} days"
        warning = (
            f"the refresh token of {c.name} {when}; run `{reconnect_command(c.name)}` before then"
        )
    return {
        "name": c.name,
        "app": c.app,
        "open_id": c.open_id,
        "display_name": c.display_name,
        "scopes": sorted(c.scopes),
        "status": c.status,
        "status_reason": c.status_reason,
        "access_token_expires_at": _iso(c.access_expires_at) if c.has_tokens else None,
        "refresh_token_expires_at": _iso(c.refresh_expires_at) if c.has_tokens else None,
        "refresh_token_days_left": round(days_left, 1) if days_left is not None else None,
        "refresh_warning": warning,
        "last_synced_at": _iso(c.last_synced_at),
    }


def _iso(epoch: float | None) -> str | None:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds") if epoch else None


@connections.command("disconnect")
@click.argument("name")
@click.option("--purge", is_flag=True, help="Also delete its rows from every warehouse table.")
@click.option("--yes", is_flag=True, help="Do not ask before purging.")
def connections_disconnect(name: str, purge: bool, yes: bool) -> None:
    """Revoke at TikTok and delete the tokens; --purge also removes the warehouse rows."""
    store = registry.store()
    store.get(name)
    if purge and not yes:
        click.confirm(f"Delete every warehouse row of connection {name}?", abort=True, err=True)
    warehouse = make_engine(settings.warehouse_url()) if purge else None
    command = f"connections disconnect{' --purge' if purge else ''}"

    def oauth_for(app: str) -> OAuthClient | None:
        live_host = not os.environ.get("TIKTOK_API_BASE_URL")
        return None if app == DEMO_APP and live_host else registry.oauth(app)

    report = disconnect(
        store, registry.audit(), name, oauth_for=oauth_for, warehouse=warehouse, command=command
    )
    if report.revoked:
        say(f"revoked the authorization of {name} at TikTok")
    else:
        say(
            f"not revoked at TikTok ({report.revoke_problem}); the local tokens are deleted "
            "anyway. The user can remove the app in TikTok: Settings > Security > Manage app "
            "permissions"
        )
    say(f"connection {name} is disconnected; its tokens are deleted")
    for table, count in sorted((report.removed or {}).items()):
        say(f"purged {count} rows from {table}")


@connections.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--replace", is_flag=True, help="Re-authorize existing connections in place.")
def connections_import(file: Path, replace: bool) -> None:
    """Register connections from existing tokens in a YAML FILE (see docs/connections.md)."""
    entries = read_entries(file, os.environ)
    result = import_entries(
        entries,
        registry.store(),
        registry.audit(),
        oauth_for=registry.oauth,
        replace=replace,
        command="connections import",
    )
    for name in result.imported:
        say(f"imported connection {name}")
    say(f"{file} holds tokens in clear text: delete it now that they are encrypted")
    if result.refused:
        raise ImportFileError(str(file), result.refused)


@connections.command("rotate-key")
def connections_rotate_key() -> None:
    """Re-encrypt every token with the first key of TIKTOK_CRM_SYNC_TOKEN_KEYS."""
    store = registry.store()
    clear = store.encrypt_clear_tokens()  # a clear token cannot be rotated: encrypt it first
    count = store.rotate_key()
    detail = f"{count} connections"
    registry.audit().record("*", KEY_ROTATED, "connections rotate-key", detail=detail)
    if clear:
        say(f"encrypted the tokens of {clear} connections an earlier version stored in clear")
    say(
        f"re-encrypted the tokens of {count} connections with the first key; older keys can "
        "now be removed from TIKTOK_CRM_SYNC_TOKEN_KEYS"
    )


@connections.command("encrypt-tokens")
def connections_encrypt_tokens() -> None:
    """Encrypt tokens that an earlier version stored in clear (run once after upgrading)."""
    count = registry.store().encrypt_clear_tokens()
    say(
        f"encrypted the tokens of {count} connections stored in clear"
        if count
        else "no token is stored in clear"
    )


@connections.command("deauthorize")
@click.option("--payload", type=click.File("rb"), default="-", help="Body file (default stdin).")
@click.option("--signature", required=True, help="The TikTok-Signature header of the delivery.")
def connections_deauthorize(payload: click.utils.LazyFile, signature: str) -> None:
    """Process TikTok's authorization.removed webhook: verify it, disconnect the connection."""
    outcome = handle_authorization_removed(
        payload.read(),
        {"TikTok-Signature": signature},
        registry.store(),
        configured_apps(),
        registry.audit(),
        command="connections deauthorize",
    )
    say(f"{outcome.result}: {outcome.connection or '-'}: {outcome.detail}")


@connections.command("audit")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON on stdout.")
def connections_audit(name: str | None, as_json: bool) -> None:
    """What happened to connections: connects, disconnects, purges (rows per table), deauths."""
    events = [e.__dict__ | {"at": _iso(e.at)} for e in registry.audit().events(name)]
    if as_json:
        click.echo(json.dumps(events, indent=2))
        return
    for e in events:
        where = f" {e['warehouse_table']}: {e['rows_removed']} rows" if e["warehouse_table"] else ""
        click.echo(
            f"{e['at']} {e['connection_name']} {e['event']}{where} "
            f"({e['command']}) {e['detail'] or ''}".rstrip()
        )
