"""Typed errors raised at the TikTok client boundary: the error taxonomy.

Every class maps to one retry policy, so callers decide on the class, never on message text:

| kind               | raised for                                        | retry policy            |
|--------------------|---------------------------------------------------|-------------------------|
| rate_limited       | 429 `rate_limit_exceeded`                         | budget cut, backoff,    |
|                    |                                                   | fail after the patience |
| transient          | transport error, timeout, 5xx, `internal_error`,  | jittered backoff, fail  |
|                    | a body that is not JSON (cut or garbled)          |                         |
| auth_expired       | 401 `access_token_invalid`                        | refresh once, repeat    |
| needs_reconnect    | `invalid_grant` on refresh, revoked grant         | never; user reconnects  |
| scope_missing      | `scope_not_authorized`, `scope_permission_missed` | never; columns empty    |
| contract_violation | JSON without the envelope, wrong types            | never; names the field  |
| permanent          | any other error code, e.g. `invalid_params`       | never                   |

A circuit that opened after repeated transient answers raises `CircuitOpen`, whose kind is the kind
that opened it (429s do not open it: the shared budget slows down instead). Messages never contain
tokens or secrets: they carry the endpoint, TikTok's error code and log_id.
"""

from __future__ import annotations

from resources.http_base import ApiError


class TikTokError(ApiError):
    """Base class; `kind` is the stable name shown in Dagster failure metadata."""

    retry_policy = "not retried"
    what_to_do = "see the message; report it with the TikTok log id if it persists"
    redacted_fields = ("code", "log_id")

    def __init__(
        self,
        message: str,
        *,
        endpoint: str | None = None,
        code: str | None = None,
        log_id: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code)
        self.endpoint = endpoint
        self.log_id = log_id

    def details(self) -> dict[str, str | int | None]:
        return {
            "retry_policy": self.retry_policy,
            "what_to_do": self.what_to_do,
            "endpoint": self.endpoint,
            "tiktok_error_code": self.code,
            "tiktok_log_id": self.log_id,
        }


class RateLimited(TikTokError):
    kind = "rate_limited"
    retryable = True
    retry_policy = (
        "each 429 lowers the endpoint's rate in the shared budget; the request is retried with "
        "backoff until TikTok has refused it for longer than the patience "
        "(TIKTOK_RATE_LIMIT_PATIENCE_S), then the run fails"
    )
    what_to_do = (
        "TikTok's per-endpoint limit was exceeded despite the budget: lower TIKTOK_RATE_LIMITS, "
        "share the budget between all workers (TIKTOK_RATE_LIMIT_URL), then re-run the partition"
    )

    def gave_up(
        self, refused_for_s: float, patience_s: float, limit: int | None, configured: int | None
    ) -> RateLimited:
        """Say how long TikTok refused, what the budget learned, and the setting that fixes it."""
        endpoint = self.endpoint or "the endpoint"
        if limit is None:
            learned = "no shared request budget was in use"
            setting = f"TIKTOK_RATE_LIMITS (e.g. {endpoint}=60)"
        else:
            learned = (
                f"the shared budget had lowered {endpoint} to {limit} requests per minute "
                f"(configured {configured})"
            )
            setting = f"TIKTOK_RATE_LIMITS={endpoint}={limit}"
        self.reword(
            f"{endpoint}: TikTok kept answering 429 rate_limit_exceeded for {refused_for_s:.0f}s "
            f"(patience {patience_s:.0f}s); {learned}"
        )
        self.what_to_do = (
            f"set {setting} (TikTok's real limit for this app, or ask TikTok for more), make every "
            "worker share one budget (TIKTOK_RATE_LIMIT_URL), then re-run the partition; "
            "TIKTOK_RATE_LIMIT_PATIENCE_S sets how long refusals are waited out"
        )
        return self


class TransientError(TikTokError):
    kind = "transient"
    retryable = True
    retry_policy = "retried with full-jitter exponential backoff (capped), then the run fails"
    what_to_do = "TikTok or the network failed repeatedly; re-run the partition later"


class AuthExpired(TikTokError):
    kind = "auth_expired"
    retry_policy = (
        "checked just before each request and refreshed when it expires (also after a wait); "
        "a rejected token is refreshed once and the same call repeated; a second rejection fails"
    )
    # Not "reconnect": TikTok just accepted the refresh token, so the grant itself is valid.
    what_to_do = (
        "TikTok rejected an access token it had just issued; re-run the partition, and if it "
        "persists report it with the TikTok log id (the grant itself is valid: TikTok accepted "
        "its refresh token)"
    )


class NeedsReconnect(TikTokError):
    kind = "needs_reconnect"
    retry_policy = "never retried: TikTok refuses the grant until the user authorizes again"
    what_to_do = "run `tiktok-crm-sync connections reconnect <connection>`"


class ScopeMissing(TikTokError):
    kind = "scope_missing"
    retry_policy = "never retried; the columns that need the scope are left empty"
    what_to_do = "reconnect the connection and grant the missing scope to fill those columns"


class ContractViolation(TikTokError):
    kind = "contract_violation"
    retry_policy = "never retried; nothing from this run is written"
    what_to_do = (
        "TikTok answered outside its documented contract; re-run later, and report the field "
        "and the TikTok log id if it persists"
    )


class PermanentError(TikTokError):
    kind = "permanent"
    retry_policy = "never retried"
    what_to_do = "TikTok rejected the request; check the app's credentials and the error code"


class CircuitOpen(TikTokError):
    """An endpoint kept failing, so calls to it stop for a cool-down instead of piling up."""

    retry_policy = "calls to the endpoint stop until the cool-down ends; the run fails"
    what_to_do = "TikTok kept failing on this endpoint; re-run the partition after the cool-down"

    def __init__(self, message: str, *, kind: str, endpoint: str) -> None:
        super().__init__(message, endpoint=endpoint)
        self.kind = kind  # the kind of failure that opened the circuit
