"""`connections connect` and `connections reconnect`: TikTok's Login Kit authorization round
trip, checked before it starts, then the connection registered."""

from __future__ import annotations

import webbrowser

import click

from pipelines.cli import registry
from pipelines.cli.connect_checks import connect_problems
from pipelines.cli.output import say
from resources.connections.lifecycle import register
from resources.connections.oauth_flow import (
    DEFAULT_PORT,
    LISTENER_TIMEOUT_S,
    PKCE_VARIANTS,
    authorize_by_paste,
    authorize_with_listener,
    default_redirect_uri,
)
from resources.tiktok.apps import DEFAULT_APP
from resources.tiktok.scopes import BASIC, SUPPORTED_SCOPES, missing_user_scopes, parse_scopes


def _authorize_options(command: click.Command) -> click.Command:
    options = [
        click.option("--scopes", help=f"Comma-separated, of {', '.join(SUPPORTED_SCOPES)}."),
        click.option("--port", default=DEFAULT_PORT, show_default=True, help="Callback port."),
        click.option("--redirect-uri", help="Exactly as registered (default: the callback URL)."),
        click.option("--pkce", type=click.Choice(PKCE_VARIANTS), default="hex", show_default=True),
        click.option("--headless", is_flag=True, help="Print the URL; paste the redirect back."),
        click.option("--timeout", default=LISTENER_TIMEOUT_S, show_default=True, help="Seconds."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _authorize(
    name: str, app: str, scopes: frozenset[str], reconnect: bool, **flow: object
) -> None:
    problems = connect_problems(
        name,
        app,
        reconnect=reconnect,
        port=int(flow["port"]),
        redirect_uri=str(flow["redirect_uri"]) if flow["redirect_uri"] else None,
        headless=bool(flow["headless"]),
    )
    if problems:  # before TikTok: an authorization the command could not store is wasted
        listed = "\n".join(f"  - {problem}" for problem in problems)
        raise click.ClickException(f"not sent to TikTok yet; first fix:\n{listed}")
    oauth = registry.oauth(app)
    if flow["headless"]:
        redirect = str(flow["redirect_uri"] or default_redirect_uri(int(flow["port"])))

        def ask(url: str) -> str:
            # The URL alone on its line, whole: rich would wrap it at the console width.
            say("Open this URL, approve, then paste the address your browser lands on:")
            click.echo(url, err=True)
            return click.prompt("redirect address", err=True)

        grant = authorize_by_paste(oauth, scopes, redirect_uri=redirect, pkce=flow["pkce"], ask=ask)
    else:

        def open_browser(url: str) -> None:
            say("Opening TikTok's authorization page (or open it yourself):")
            click.echo(url, err=True)
            webbrowser.open(url)

        grant = authorize_with_listener(
            oauth,
            scopes,
            port=int(flow["port"]),
            redirect_uri=str(flow["redirect_uri"]) if flow["redirect_uri"] else None,
            pkce=flow["pkce"],
            open_browser=open_browser,
            timeout_s=float(flow["timeout"]),
        )
    command = f"connections {'reconnect' if reconnect else 'connect'}"
    connection = register(
        registry.store(), registry.audit(), name, app, grant, reconnect=reconnect, command=command
    )
    say(
        f"connection {name} {'reconnected' if reconnect else 'connected'} (app {app}, open_id "
        f"{connection.open_id}); granted: {', '.join(sorted(connection.scopes))}"
    )
    for scope in sorted(scopes - connection.scopes):
        fields = missing_user_scopes(connection.scopes).get(scope, ("videos",))
        say(f"not granted: {scope} ({', '.join(fields)} will stay empty)")
    say("It syncs in the next scheduled run; its Dagster partition appears within a minute.")


def _scopes(raw: str | None, default: frozenset[str]) -> frozenset[str]:
    scopes = parse_scopes(raw) if raw else default
    unknown = sorted(scopes - set(SUPPORTED_SCOPES))
    if unknown:
        raise click.BadParameter(f"unknown scope(s) {', '.join(unknown)}", param_hint="--scopes")
    return scopes | {BASIC}


@click.command("connect")
@click.argument("name")
@click.option("--app", default=DEFAULT_APP, show_default=True, help="TikTok app (credentials).")
@_authorize_options
def connections_connect(name: str, app: str, scopes: str | None, **flow: object) -> None:
    """Authorize a TikTok account through Login Kit and register it as connection NAME."""
    _authorize(name, app, _scopes(scopes, frozenset(SUPPORTED_SCOPES)), False, **flow)


@click.command("reconnect")
@click.argument("name")
@_authorize_options
def connections_reconnect(name: str, scopes: str | None, **flow: object) -> None:
    """Authorize connection NAME again, in place: same partition, same history, same app."""
    existing = registry.store().get(name)
    _authorize(name, existing.app, _scopes(scopes, existing.scopes), True, **flow)
