"""A fake server's lifecycle: serve an HTTP server from a daemon thread on a local port.

This module sits below every simulator package and imports none of them: the TikTok simulator and
the CRM fakes both build on it, so an import of `simulators.tiktok` from here closes a cycle
(issue 15). It knows the server it runs only by the `BackgroundServer` protocol.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

logger = logging.getLogger(__name__)

POLL_INTERVAL_SECONDS = 0.02  # how fast stop() is noticed by serve_forever
JOIN_TIMEOUT_SECONDS = 5.0


class BackgroundServer(Protocol):
    """What the lifecycle needs of a server (`simulators.tiktok.server.SimHTTPServer` has it)."""

    stopping: threading.Event  # set on stop, so handlers sleeping in a fault wake up

    @property
    def server_address(self) -> tuple[Any, ...]: ...

    def serve_forever(self, poll_interval: float = ...) -> None: ...

    def shutdown(self) -> None: ...

    def close_connections(self) -> None: ...

    def server_close(self) -> None: ...


class ServedInBackground:
    """Base for the fakes: subclasses build their server; this starts, stops and locates it."""

    _server: BackgroundServer | None = None
    _thread: threading.Thread | None = None

    def _make_server(self) -> BackgroundServer:
        raise NotImplementedError

    def start(self) -> str:
        """Bind and serve in a daemon thread; returns the base URL."""
        if self._server is not None:
            raise RuntimeError(f"{type(self).__name__} is already running")
        server = self._make_server()
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": POLL_INTERVAL_SECONDS},
            name=f"{type(self).__name__}-{server.server_address[1]}",
            daemon=True,
        )
        thread.start()
        self._server, self._thread = server, thread
        logger.info("%s listening on %s", type(self).__name__, self.base_url)
        return self.base_url

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.stopping.set()  # wakes handlers sleeping in a latency or timeout fault
        server.shutdown()
        server.close_connections()
        server.server_close()
        thread.join(JOIN_TIMEOUT_SECONDS)
        self._server = self._thread = None

    @contextmanager
    def running(self) -> Iterator[str]:
        base_url = self.start()
        try:
            yield base_url
        finally:
            self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"
