"""Turn client-boundary errors into Dagster failures a user can act on, per connection.

The failure's metadata names the error class (`error_kind`, see `resources.tiktok.errors`), its
retry policy, what to do, TikTok's own error code and log id, and the calls made before it.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import dagster as dg

from resources.configurable import DemoModeError
from resources.connections import UnknownConnection
from resources.tiktok.apps import MissingSecret
from resources.tiktok.errors import CircuitOpen, NeedsReconnect, TikTokError
from resources.tokens import reconnect_hint

_SETUP_ERRORS = (DemoModeError, MissingSecret, UnknownConnection, ValueError)


@dataclass
class FailureContext:
    """What the failing asset had done so far: its TikTok calls, as metadata."""

    calls: dict = field(default_factory=dict)

    def metadata(self) -> dict:
        return dict(self.calls)


@contextmanager
def connection_failures(connection_name: str) -> Iterator[FailureContext]:
    """Fail only this connection's partition, with the error class and the fix in metadata."""
    context = FailureContext()
    try:
        yield context
    except NeedsReconnect as err:
        raise dg.Failure(
            description=f"connection {connection_name!r} needs to be reconnected: "
            f"{reconnect_hint(connection_name)}",
            metadata=_metadata(err, connection_name, context),
            allow_retries=False,
        ) from err
    except TikTokError as err:
        raise dg.Failure(
            description=f"connection {connection_name!r}: {err} (what to do: {err.what_to_do})",
            metadata=_metadata(err, connection_name, context),
            # A circuit that opened or a retryable error may pass later; the rest never will.
            allow_retries=err.retryable or isinstance(err, CircuitOpen),
        ) from err
    except _SETUP_ERRORS as err:
        raise dg.Failure(
            description=f"connection {connection_name!r}: {err}",
            metadata={"error_kind": "configuration", "connection": connection_name}
            | context.metadata(),
            allow_retries=False,
        ) from err


def _metadata(err: TikTokError, connection_name: str, context: FailureContext) -> dict:
    facts = err.metadata() | {"connection": connection_name} | context.metadata()
    facts["what_to_do"] = err.what_to_do.replace("<connection>", connection_name)
    return facts
