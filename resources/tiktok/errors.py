"""Typed errors raised at the TikTok client boundary.

Every class maps to one retry policy, so callers decide on the class, never on message text:

- RateLimited (429 `rate_limit_exceeded`): back off with jitter, retry.
- TransientError (transport error, timeout, 5xx): retry with jitter, then fail.
- AuthExpired (401 `access_token_invalid`): refresh the token once, retry.
- NeedsReconnect (`invalid_grant` on refresh, revoked grant): stop; the user must reconnect.
- ScopeMissing (`scope_not_authorized`, `scope_permission_missed`): stop that call; not a failure.
- ContractViolation (malformed JSON, missing envelope, wrong types): fail naming the field.
- PermanentError (any other error code, e.g. `invalid_params`): fail, do not retry.

Messages never contain tokens or secrets: they carry the endpoint, TikTok's error code and log_id.
"""

from __future__ import annotations


class TikTokError(Exception):
    """Base class; `kind` is the stable name shown in Dagster failure metadata."""

    kind = "error"
    retryable = False

    def __init__(
        self,
        message: str,
        *,
        endpoint: str | None = None,
        code: str | None = None,
        log_id: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.endpoint = endpoint
        self.code = code
        self.log_id = log_id
        self.status = status

    def metadata(self) -> dict[str, str | int]:
        """What a failure shows in Dagster: never a token, only facts a user can act on."""
        facts: dict[str, str | int | None] = {
            "error_kind": self.kind,
            "endpoint": self.endpoint,
            "tiktok_error_code": self.code,
            "tiktok_log_id": self.log_id,
            "http_status": self.status,
        }
        return {key: value for key, value in facts.items() if value is not None}


class RateLimited(TikTokError):
    kind = "rate_limited"
    retryable = True


class TransientError(TikTokError):
    kind = "transient"
    retryable = True


class AuthExpired(TikTokError):
    kind = "auth_expired"


class NeedsReconnect(TikTokError):
    kind = "needs_reconnect"


class ScopeMissing(TikTokError):
    kind = "scope_missing"


class ContractViolation(TikTokError):
    kind = "contract_violation"


class PermanentError(TikTokError):
    kind = "permanent"
