"""Registering and disconnecting connections, with the checks and the audit trail around the store.

- A new name never overwrites an existing connection; `reconnect` re-authorizes in place and must
  bring back the same TikTok account, so a partition's history never mixes two accounts.
- One TikTok account is one connection per app: a second name for it would sync it twice.
- `disconnect` revokes at TikTok, then deletes the tokens even when the revoke fails (already
  revoked, network), and with `purge` removes the connection's warehouse rows, all audited.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine

from resources.connections import audit
from resources.connections.audit import AuditLog
from resources.connections.store import Connection, ConnectionStore, UnknownConnection
from resources.tiktok.apps import MissingSecret
from resources.tiktok.errors import TikTokError
from resources.tiktok.oauth import OAuthClient, TokenGrant
from resources.warehouse.purge import purge_connection


class RegistrationRefused(ValueError):
    """The grant was not stored; the message says why and what to run instead."""


def _existing(store: ConnectionStore, name: str) -> Connection | None:
    try:
        return store.get(name)
    except UnknownConnection:
        return None


def check_new_grant(
    store: ConnectionStore, name: str, app: str, open_id: str, *, reconnect: bool
) -> None:
    """Refuse a grant that would overwrite, mix or duplicate connections."""
    existing = _existing(store, name)
    if existing is None and reconnect:
        raise RegistrationRefused(
            f"no connection named {name!r} to reconnect; add it with "
            f"`tiktok-crm-sync connections connect {name}`"
        )
    if existing is not None and not reconnect:
        raise RegistrationRefused(
            f"connection {name!r} already exists; authorize it again with "
            f"`tiktok-crm-sync connections reconnect {name}`"
        )
    if existing is not None and (existing.open_id, existing.app) != (open_id, app):
        raise RegistrationRefused(
            f"connection {name!r} belongs to another TikTok account or app (open_id "
            f"{existing.open_id}, app {existing.app}) than the one just authorized (open_id "
            f"{open_id}, app {app}); log in to TikTok as the original account, or connect this "
            "one under a new name"
        )
    twin = store.find(app, open_id)
    if twin is not None and twin.name != name:
        raise RegistrationRefused(
            f"this TikTok account is already connection {twin.name!r} (app {app}); "
            f"use `tiktok-crm-sync connections reconnect {twin.name}` instead"
        )


def register(
    store: ConnectionStore,
    log: AuditLog,
    name: str,
    app: str,
    grant: TokenGrant,
    *,
    reconnect: bool,
    command: str,
) -> Connection:
    """Store a fresh grant as `name`, or refuse it (it is then dropped, never stored).

    A refused grant is not revoked: TikTok's revoke ends the user's whole authorization of the
    app, which would also cut off the connection the grant collided with.
    """
    check_new_grant(store, name, app, grant.open_id, reconnect=reconnect)
    connection = store.save_grant(name, app, grant)
    event = audit.RECONNECTED if reconnect else audit.CONNECTED
    log.record(name, event, command, detail=f"scopes {','.join(sorted(grant.scopes))}")
    return connection


@dataclass(frozen=True)
class DisconnectReport:
    name: str
    revoked: bool
    revoke_problem: str | None  # why TikTok was not told; the tokens are deleted regardless
    tokens_deleted: bool
    removed: dict[str, int] | None  # warehouse table -> rows, when purged


def disconnect(
    store: ConnectionStore,
    log: AuditLog,
    name: str,
    *,
    oauth_for: Callable[[str], OAuthClient | None],
    warehouse: Engine | None,
    command: str,
) -> DisconnectReport:
    """Revoke, delete the tokens, set `disconnected`; purge the warehouse rows if `warehouse`."""
    connection = store.get(name)
    revoked, problem = False, None
    if connection.has_tokens:
        try:
            oauth = oauth_for(connection.app)
            if oauth is None:
                problem = "demo connection: the simulator holds nothing to revoke"
            else:
                oauth.revoke(connection.access_token)
                revoked = True
        except (TikTokError, MissingSecret) as err:
            problem = str(err)
    else:
        problem = "no tokens stored (already disconnected)"
    deleted = store.forget_tokens(name, reason=f"disconnected by `{command}`")
    detail = "revoked at TikTok" if revoked else f"not revoked: {problem}"
    log.record(name, audit.DISCONNECTED, command, detail=detail)
    removed = None
    if warehouse is not None:
        # After the tokens are gone: a failed purge is re-run alone, the disconnect stands.
        removed = purge_connection(warehouse, name)
        total = sum(removed.values())
        summary = f"{total} rows from {len(removed)} warehouse tables"
        log.record(name, audit.PURGED, command, detail=summary, removed=removed)
    return DisconnectReport(name, revoked, problem, deleted, removed)
