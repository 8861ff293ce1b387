"""What the CRM fakes share: the TikTok simulator's HTTP layer (plus PATCH), a request log,
queued faults and a start/stop lifecycle on 127.0.0.1.

A fake answers one request at a time under its lock, so counts and stored records are exact.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from simulators.background import ServedInBackground
from simulators.tiktok.responses import Reply, SimRequest, encode_json
from simulators.tiktok.server import SimHTTPServer, SimRequestHandler
from simulators.tiktok.traffic import FaultQueue

LOOPBACK = "127.0.0.1"
Wait = Callable[[float], bool]


class _CrmRequestHandler(SimRequestHandler):
    server_version = "crm-fake"

    def do_PATCH(self) -> None:
        self._serve()


class _CrmHTTPServer(SimHTTPServer):
    def __init__(self, address: tuple[str, int], app: CrmFake) -> None:
        super().__init__(address, app)  # type: ignore[arg-type]
        # Salesforce upserts are PATCH requests, which the TikTok handler does not route.
        self.RequestHandlerClass = _CrmRequestHandler


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any  # parsed JSON, or the raw text when it is not JSON


def json_reply(status: int, payload: object, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    return Reply(status=status, body=encode_json(payload), headers=headers)


def parse_json(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return body.decode("utf-8", "replace")


class CrmFake(ServedInBackground):
    """Base class: subclasses implement `answer(request, fault)`; faults come from `inject`."""

    faults: frozenset[str] = frozenset()

    def __init__(self, host: str = LOOPBACK, port: int = 0) -> None:
        self.lock = threading.RLock()
        self.requests: list[RecordedRequest] = []
        self._faults = FaultQueue()
        self._address = (host, port)

    def answer(self, request: SimRequest, fault: str | None) -> Reply:
        raise NotImplementedError

    def handle(self, request: SimRequest, wait: Wait) -> Reply:
        with self.lock:
            headers = {name: value for name, value in request.headers.items()}
            self.requests.append(
                RecordedRequest(request.method, request.path, headers, parse_json(request.body))
            )
            return self.answer(request, self._faults.pop("any"))

    def inject(self, fault: str, count: int = 1) -> None:
        """Answer the next `count` requests with `fault` (see the subclass's `faults`)."""
        if fault not in self.faults:
            raise ValueError(f"unknown fault {fault!r}; expected one of {sorted(self.faults)}")
        self._faults.push("any", fault, count)

    @property
    def request_count(self) -> int:
        with self.lock:
            return len(self.requests)

    def reset_requests(self) -> None:
        with self.lock:
            self.requests.clear()

    def _make_server(self) -> SimHTTPServer:
        return _CrmHTTPServer(self._address, self)
