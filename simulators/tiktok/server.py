"""The HTTP/1.1 layer: keep-alive, exact Content-Length, socket resets, quick shutdown.

Nothing here knows TikTok; it turns bytes into a SimRequest and a Reply back into bytes.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from simulators.tiktok.app import SimulatorApp
from simulators.tiktok.responses import Reply, SimRequest, json_reply

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 << 20


class SimHTTPServer(ThreadingHTTPServer):
    """Threaded server that remembers its open connections so stop() can cut idle keep-alives."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], app: SimulatorApp) -> None:
        super().__init__(address, SimRequestHandler)
        self.app = app
        self.stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def track(self, connection: socket.socket, opened: bool) -> None:
        with self._connections_lock:
            if opened:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already gone
                connection.shutdown(socket.SHUT_RDWR)

    def wait(self, seconds: float) -> bool:
        """Sleep that stop() interrupts; False means the server is shutting down."""
        return not self.stopping.wait(seconds)

    def handle_error(self, request: object, client_address: object) -> None:
        # Clients that time out or hang up mid-answer are normal here (see the timeout fault).
        logger.debug("connection from %s ended with an error", client_address, exc_info=True)


class SimRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "tiktok-simulator"
    # Headers and body go out in two writes; with Nagle on, delayed ACKs add ~40 ms per call.
    disable_nagle_algorithm = True
    server: SimHTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, opened=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, opened=False)

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: object) -> None:
        # The default logs the request line, and a request line can carry codes: say nothing.
        return

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        body = self._read_body()
        if body is None:
            return
        parts = urlsplit(self.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        request = SimRequest(
            method=self.command,
            path=parts.path,
            query={key: values[0] for key, values in query.items()},
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
        )
        logger.debug("%s %s", self.command, parts.path)
        reply = self.server.app.handle(request, self.server.wait)
        if reply.reset:
            self._reset()
        else:
            self._write(reply)

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self._refuse(411, "Send a Content-Length; chunked bodies are not supported.")
            return None
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            self._refuse(400, "Bad Content-Length.")
            return None
        return self.rfile.read(length) if length else b""

    def _refuse(self, status: int, message: str) -> None:
        self.close_connection = True
        payload = {"error": {"code": "invalid_request", "message": message, "log_id": ""}}
        self._write(json_reply(status, payload))

    def _write(self, reply: Reply) -> None:
        try:
            self.send_response(reply.status)
            if reply.content_type is not None:
                self.send_header("Content-Type", reply.content_type)
            for name, value in reply.headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up, e.g. during a timeout fault

    def _reset(self) -> None:
        """Drop the connection with a TCP RST and no answer at all."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
