"""Injectable faults: what each one does to the next answer of an endpoint.

Transport faults replace the answer outright; body faults damage a finished answer; paging
faults (cursor_loop, duplicate_items, ...) need the catalog and live in the video list handler.
A fault can be aimed at one account: it then hits only Display requests made with that account's
tokens, so a test can break one connection and watch the others sync untouched.
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict, deque
from collections.abc import Iterator
from contextlib import contextmanager

from simulators.tiktok.responses import (
    ApiError,
    OAuthError,
    Reply,
    access_token_invalid,
    display_error,
    encode_json,
    internal_error,
    oauth_error,
    rate_limit_exceeded,
)
from simulators.tiktok.traffic import DISPLAY_ENDPOINTS, ENDPOINTS, FaultQueue

TRANSPORT_FAULTS = frozenset(
    {"rate_limited", "server_error", "bad_gateway", "timeout", "connection_reset"}
)
BODY_FAULTS = frozenset({"truncated_json", "malformed_json"})
DISPLAY_FAULTS = frozenset({"missing_envelope", "wrong_types", "token_expired"})
PAGING_FAULTS = frozenset({"cursor_loop", "duplicate_items", "empty_page_has_more", "short_page"})
FAULTS = TRANSPORT_FAULTS | BODY_FAULTS | DISPLAY_FAULTS | PAGING_FAULTS

BAD_GATEWAY_HTML = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"
)
MALFORMED_BODY = b"{'data': {'user': None}, 'error': ok}"  # Python repr, not JSON


def applicable_faults(endpoint: str) -> frozenset[str]:
    """Faults that mean something for an endpoint (the authorize page answers with a redirect)."""
    if endpoint == "authorize":
        return TRANSPORT_FAULTS
    faults = TRANSPORT_FAULTS | BODY_FAULTS
    if endpoint in DISPLAY_ENDPOINTS:
        faults |= DISPLAY_FAULTS
    if endpoint == "oauth_token":
        faults |= {"wrong_types"}
    if endpoint == "video_list":
        faults |= PAGING_FAULTS
    return faults


def check_fault(endpoint: str, fault: str, count: int, aimed: bool = False, after: int = 0) -> None:
    if endpoint not in ENDPOINTS:
        raise ValueError(f"unknown endpoint {endpoint!r}; expected one of {ENDPOINTS}")
    if fault not in FAULTS:
        raise ValueError(f"unknown fault {fault!r}; expected one of {sorted(FAULTS)}")
    if fault not in applicable_faults(endpoint):
        raise ValueError(f"fault {fault!r} does not apply to endpoint {endpoint!r}")
    if count < 1:
        raise ValueError("count must be >= 1")
    if after < 0:
        raise ValueError("after must be >= 0")
    if aimed and endpoint not in DISPLAY_ENDPOINTS:
        # OAuth requests carry no bearer token, so the simulator cannot tell whose they are.
        raise ValueError(f"only Display endpoints take a fault aimed at an account: {endpoint!r}")


class AimedFaultQueue(FaultQueue):
    """The shared queue, plus queues of faults aimed at one account's requests.

    `after` lets that many requests through before the fault (e.g. the second page of a list).
    The app names the account of the request it is answering with `answering`; the handler's
    thread carries it to `pop`, whose signature the app already uses.
    """

    def __init__(self) -> None:
        super().__init__()
        self._aimed: dict[tuple[str, int], deque[str | None]] = defaultdict(deque)
        self._answering = threading.local()

    def push(
        self, endpoint: str, fault: str, count: int, account: int | None = None, after: int = 0
    ) -> None:
        entries: list[str | None] = [None] * after + [fault] * count
        with self._lock:
            if account is None:
                self._queues[endpoint].extend(entries)  # type: ignore[arg-type]
            else:
                self._aimed[(endpoint, account)].extend(entries)

    @contextmanager
    def answering(self, account: int | None) -> Iterator[None]:
        self._answering.account = account
        try:
            yield
        finally:
            self._answering.account = None

    def pop(self, endpoint: str) -> str | None:
        account = getattr(self._answering, "account", None)
        with self._lock:
            aimed = self._aimed.get((endpoint, account))
            fault = aimed.popleft() if aimed else None
        return fault if fault is not None else super().pop(endpoint)

    def pending(self) -> dict[str, list[str]]:
        with self._lock:
            queues = {endpoint: list(queue) for endpoint, queue in self._queues.items()}
            for (endpoint, account), queue in self._aimed.items():
                queues[f"{endpoint}@{account}"] = list(queue)
        found = {name: [f for f in queue if f is not None] for name, queue in queues.items()}
        return {name: faults for name, faults in found.items() if faults}

    def clear(self) -> None:
        super().clear()
        with self._lock:
            self._aimed.clear()


def immediate_reply(fault: str, endpoint: str, log_id: str, error_data_key: str) -> Reply | None:
    """The answer that replaces the real one, or None if the fault acts later."""
    display = endpoint in DISPLAY_ENDPOINTS
    if fault == "connection_reset":
        return Reply(status=0, reset=True)
    if fault == "bad_gateway":
        return Reply(status=502, body=BAD_GATEWAY_HTML, content_type="text/html")
    error: ApiError | None = None
    if fault == "rate_limited":
        error = rate_limit_exceeded()
    elif fault == "server_error":
        error = internal_error()
    elif fault == "token_expired":
        error = access_token_invalid()
    if error is None:
        return None
    if display:
        return display_error(error, log_id, error_data_key)
    # OAuth endpoints speak the flat OAuth shape, whose documented values include these two.
    oauth_code = "temporarily_unavailable" if error.status == 429 else "server_error"
    return oauth_error(OAuthError(oauth_code, error.message, error.status), log_id, error.status)


def _mistype(value: object) -> object:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dict):
        return {key: _mistype(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_mistype(item) for item in value]
    return value


def damage(fault: str, endpoint: str, reply: Reply) -> Reply:
    """Apply a body fault to a finished answer; other faults leave it alone."""
    if fault == "truncated_json":
        return Reply(status=200, body=reply.body[: len(reply.body) // 2])
    if fault == "malformed_json":
        return Reply(status=200, body=MALFORMED_BODY)
    if fault not in {"missing_envelope", "wrong_types"}:
        return reply
    payload = json.loads(reply.body)
    if fault == "missing_envelope":
        payload.pop("error", None)
        payload.setdefault("data", {})
        return Reply(status=200, body=encode_json(payload))
    if endpoint == "oauth_token":
        return Reply(status=reply.status, body=encode_json(_mistype(payload)))
    data = payload.get("data")
    if isinstance(data, dict):
        mistyped = _mistype(data)
        if endpoint == "video_query" and isinstance(mistyped, dict):
            # A list serialised into a string, the worst contract break a client can meet.
            mistyped["videos"] = encode_json(data.get("videos", [])).decode("utf-8")
        payload["data"] = mistyped
    return Reply(status=reply.status, body=encode_json(payload))
