"""Requests, replies and the two error shapes TikTok uses (OAuth flat vs Display envelope).

Handlers raise `ApiError` / `OAuthError`; the app turns them into the exact JSON of
tiktok-api.md sections 1.8 and 6, so no handler builds an error body by hand.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass

JSON_CONTENT_TYPE = "application/json; charset=utf-8"
UTC_PLUS_8_SECONDS = 8 * 3_600  # recorded log_ids start with the call time in UTC+8
ACCESS_TOKEN_INVALID_MESSAGE = "Access token is invalid, please refresh token and retry"


@dataclass(frozen=True)
class SimRequest:
    """One parsed HTTP request; header names lower-cased, each query key keeps its first value."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class Reply:
    """What the HTTP layer writes; `reset` closes the socket without answering."""

    status: int
    body: bytes = b""
    content_type: str | None = JSON_CONTENT_TYPE
    headers: tuple[tuple[str, str], ...] = ()
    reset: bool = False


class ApiError(Exception):
    """A Display API error: rendered as {"error": {"code", "message", "log_id"}}."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class OAuthError(Exception):
    """An OAuth error: rendered flat as {"error", "error_description", "log_id"}."""

    def __init__(self, error: str, description: str, status: int | None = None) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        # None means "the configured oauth_error_status" (section 12.3 leaves it open).
        self.status = status


def encode_json(payload: object) -> bytes:
    # UTF-8 rather than \u escapes, so clients that mis-decode non-Latin text are caught.
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def json_reply(status: int, payload: object) -> Reply:
    return Reply(status=status, body=encode_json(payload))


def make_log_id(now: float, serial_hex: str) -> str:
    """14-digit UTC+8 timestamp of the clock plus 20 upper-case hex characters."""
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(int(now) + UTC_PLUS_8_SECONDS))
    return f"{stamp}{serial_hex[:20].upper()}"


def display_ok(data: object, log_id: str) -> Reply:
    return json_reply(200, {"data": data, "error": {"code": "ok", "message": "", "log_id": log_id}})


def display_error(error: ApiError, log_id: str, error_data_key: str) -> Reply:
    payload: dict[str, object] = {}
    if error_data_key == "empty":
        payload["data"] = {}
    payload["error"] = {"code": error.code, "message": error.message, "log_id": log_id}
    return json_reply(error.status, payload)


def oauth_error(error: OAuthError, log_id: str, default_status: int) -> Reply:
    status = default_status if error.status is None else error.status
    payload = {"error": error.error, "error_description": error.description, "log_id": log_id}
    return json_reply(status, payload)


def access_token_invalid() -> ApiError:
    return ApiError(401, "access_token_invalid", ACCESS_TOKEN_INVALID_MESSAGE)


def rate_limit_exceeded() -> ApiError:
    return ApiError(429, "rate_limit_exceeded", "API rate limit exceeded, please try again later.")


def internal_error() -> ApiError:
    return ApiError(500, "internal_error", "Something went wrong. Please try again later.")


def invalid_params(message: str) -> ApiError:
    return ApiError(400, "invalid_params", message)
