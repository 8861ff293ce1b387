"""Classifying one Display API response: envelopes of tiktok-api.md sections 3-6 and 12.5."""

import json

import httpx
import pytest

from resources.tiktok.errors import (
    AuthExpired,
    ContractViolation,
    PermanentError,
    RateLimited,
    ScopeMissing,
    TransientError,
)
from resources.tiktok.responses import classify_response

LOG_ID = "20260522060334CD776AC1BE6816281BF"
OK_USER = {
    "data": {"user": {"open_id": "-000abc"}},
    "error": {"code": "ok", "message": "", "log_id": LOG_ID},
}


def _error(code: str, data: bool = True) -> dict:
    body = {"error": {"code": code, "message": f"{code} message", "log_id": LOG_ID}}
    return body | ({"data": {}} if data else {})


def _response(status: int, body: object) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.Response(status, content=content)


def test_ok_envelope_returns_data():
    assert classify_response(_response(200, OK_USER), "user_info") == OK_USER["data"]


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        # the documented codes, with and without a `data` key (section 12.5 is unconfirmed)
        (429, _error("rate_limit_exceeded"), RateLimited),
        (429, _error("rate_limit_exceeded", data=False), RateLimited),
        (401, _error("access_token_invalid"), AuthExpired),
        (401, _error("scope_not_authorized"), ScopeMissing),
        (400, _error("scope_permission_missed"), ScopeMissing),
        (500, _error("internal_error"), TransientError),
        (400, _error("invalid_params"), PermanentError),
        # an unknown code is a failure, classified by status
        (400, _error("spam_risk_too_many_posts"), PermanentError),
        (503, _error("brand_new_code"), TransientError),
        # bodies that are not the contract
        # a body cut off or garbled on the way: retried like a blip (issue 18)
        (200, b'{"data": {"user": {"open', TransientError),
        (200, b"<html>oops</html>", TransientError),
        (200, {"data": {"user": {}}}, ContractViolation),
        (200, {"data": [], "error": {"code": "ok"}}, ContractViolation),
        (200, ["not", "an", "object"], ContractViolation),
        # gateways answer HTML: retry by status
        (502, b"<html>Bad Gateway</html>", TransientError),
        (429, b"", RateLimited),
    ],
)
def test_errors_are_typed(status, body, expected):
    with pytest.raises(expected) as caught:
        classify_response(_response(status, body), "user_info")
    assert caught.value.endpoint == "user_info"


def test_error_carries_code_and_log_id_but_no_request_details():
    with pytest.raises(AuthExpired) as caught:
        classify_response(_response(401, _error("access_token_invalid")), "video_list")
    assert caught.value.metadata() == {
        "error_kind": "auth_expired",
        "retry_policy": AuthExpired.retry_policy,
        "what_to_do": AuthExpired.what_to_do,
        "endpoint": "video_list",
        "tiktok_error_code": "access_token_invalid",
        "tiktok_log_id": LOG_ID,
        "http_status": 401,
    }
