"""What `connections connect` and `reconnect` check before sending anyone to TikTok.

A user who approves at TikTok and only then learns that the token key is missing has to do the
whole authorization again; every problem found here is reported at once, each with its fix.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

from sqlalchemy import false, update

from resources import settings
from resources.connections.crypto import cipher_from_environment
from resources.connections.oauth_flow import LISTEN_HOST
from resources.connections.store import ConnectionStore, validate_name
from resources.connections.table import connections_table
from resources.database import make_engine
from resources.tiktok.apps import MissingSecret, load_app

Check = Callable[[], str | None]  # a problem with its fix, or None


def port_problem(port: int, host: str = LISTEN_HOST) -> str | None:
    """The callback listener must be able to bind; a busy port is found before TikTok is."""
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError as err:
            busy = err.errno == errno.EADDRINUSE
            why = "is in use by another program" if busy else f"cannot be opened ({err.strerror})"
            return f"callback port {port} {why}: free it or pass --port with another one"
    return None


def _token_key() -> str | None:
    try:
        cipher_from_environment()
    except MissingSecret as err:  # TokenKeyError: missing or malformed, with how to make one
        return str(err)
    return None


def _app(app: str) -> Check:
    def check() -> str | None:
        try:
            load_app(app)
        except MissingSecret as err:
            return str(err)
        return None

    return check


def _name(name: str, reconnect: bool) -> Check:
    def check() -> str | None:
        try:
            validate_name(name)
            store = ConnectionStore(make_engine(settings.state_database_url()))
            exists = name in {connection.name for connection in store.list()}
            with store.engine.connect() as db:  # a write that changes nothing, rolled back
                db.execute(update(connections_table).where(false()).values(name="-"))
                db.rollback()
        except ValueError as err:
            return str(err)
        except Exception as err:  # the state database: unreachable, read-only, corrupt
            return f"the state database cannot be opened for writing ({type(err).__name__}: {err})"
        if exists and not reconnect:
            return (
                f"connection {name!r} already exists: authorize it again with "
                f"`tiktok-crm-sync connections reconnect {name}`"
            )
        if not exists and reconnect:
            return f"no connection named {name!r}: add it with `connections connect {name}`"
        return None

    return check


def connect_problems(
    name: str, app: str, *, reconnect: bool, port: int, redirect_uri: str | None, headless: bool
) -> list[str]:
    """Every problem that would make the authorization useless, in the order to fix them."""
    checks: list[Check] = [_token_key, _app(app), _name(name, reconnect)]
    listens = not headless and (
        redirect_uri is None or urlsplit(redirect_uri).hostname in (LISTEN_HOST, "localhost")
    )
    if listens:
        checks.append(lambda: port_problem(port))
    return [problem for check in checks if (problem := check()) is not None]
