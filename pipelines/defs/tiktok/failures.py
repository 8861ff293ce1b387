"""Turn client-boundary errors into Dagster failures a user can act on, per connection.

`failure_for` builds the failure (style habit 16): its description is one sentence that names the
connection once and says what to do; its metadata names the error class (`error_kind`, see
`resources.tiktok.errors`), its retry policy, TikTok's own error code and log id, and the calls
made before it. An expected refusal (needs reconnect, missing scope, a demo connection in a live
run, missing configuration) carries no cause, so no client stack trace follows the sentence; an
unexpected error keeps its cause, and its trace stays in the run's logs.
"""

from collections.abc import Mapping
from typing import Any

import dagster as dg

from resources.configurable import DemoModeError
from resources.connections.store import UnknownConnection
from resources.connections.tokens import reconnect_hint
from resources.tiktok.apps import MissingSecret
from resources.tiktok.errors import CircuitOpen, NeedsReconnect, ScopeMissing, TikTokError

_SETUP_ERRORS = (DemoModeError, MissingSecret, UnknownConnection, ValueError)
# Refusals a user expects and fixes with the sentence alone: their trace helps nobody.
EXPECTED = (NeedsReconnect, ScopeMissing, DemoModeError, MissingSecret, UnknownConnection)


def about(connection_name: str, text: str) -> str:
    """`text` as a sentence about the connection, naming it once (our messages quote it)."""
    if repr(connection_name) in text:
        return text
    return f"connection {connection_name!r}: {text}"


def failure_for(
    connection_name: str, err: BaseException, calls: Mapping[str, Any] | None = None
) -> dg.Failure | None:
    """The failure of this connection for `err`, or None when no class here knows it."""
    calls = dict(calls or {})
    if isinstance(err, NeedsReconnect):
        failure = dg.Failure(
            description=f"connection {connection_name!r} needs to be reconnected: "
            f"{reconnect_hint(connection_name)}",
            metadata=_metadata(err, connection_name, calls),
            allow_retries=False,
        )
    elif isinstance(err, TikTokError):
        what_to_do = err.what_to_do.replace("<connection>", connection_name)
        failure = dg.Failure(
            description=about(connection_name, f"{err} (what to do: {what_to_do})"),
            metadata=_metadata(err, connection_name, calls),
            # A circuit that opened or a retryable error may pass later; the rest never will.
            allow_retries=err.retryable or isinstance(err, CircuitOpen),
        )
    elif isinstance(err, _SETUP_ERRORS):
        failure = dg.Failure(
            description=about(connection_name, str(err)),
            metadata={"error_kind": "configuration", "connection": connection_name} | calls,
            allow_retries=False,
        )
    else:
        return None
    if not isinstance(err, EXPECTED):
        failure.__cause__ = err  # its trace belongs in the run's logs
    return failure


def _metadata(err: TikTokError, connection_name: str, calls: dict[str, Any]) -> dict:
    facts = err.metadata() | {"connection": connection_name} | calls
    facts["what_to_do"] = err.what_to_do.replace("<connection>", connection_name)
    return facts
