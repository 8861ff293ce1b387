"""Turn client-boundary errors into Dagster failures a user can act on, per connection."""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from resources.configurable import DemoModeError
from resources.connections import UnknownConnection
from resources.tiktok.apps import MissingSecret
from resources.tiktok.errors import NeedsReconnect, TikTokError
from resources.tokens import reconnect_hint

_SETUP_ERRORS = (DemoModeError, MissingSecret, UnknownConnection, ValueError)


@contextmanager
def connection_failures(connection_name: str) -> Iterator[None]:
    """Fail only this connection's partition, with the error class and the fix in metadata."""
    try:
        yield
    except NeedsReconnect as err:
        raise dg.Failure(
            description=f"connection {connection_name!r} needs to be reconnected: "
            f"{reconnect_hint(connection_name)}",
            metadata=err.metadata() | {"connection": connection_name},
            allow_retries=False,
        ) from err
    except TikTokError as err:
        raise dg.Failure(
            description=f"connection {connection_name!r}: {err}",
            metadata=err.metadata() | {"connection": connection_name},
            allow_retries=err.retryable,
        ) from err
    except _SETUP_ERRORS as err:
        raise dg.Failure(
            description=f"connection {connection_name!r}: {err}",
            metadata={"error_kind": "configuration", "connection": connection_name},
            allow_retries=False,
        ) from err
