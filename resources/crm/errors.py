"""Typed errors raised at the CRM client boundary.

Every class maps to one policy, so callers decide on the class, never on message text:

- RateLimited (HubSpot 429 on the ten-secondly window): wait as told, retry.
- TransientError (transport error, timeout, 5xx): retry with jitter, then stop the push.
- ApiLimitExhausted (HubSpot 429 `policyName: DAILY`, Salesforce 403 `REQUEST_LIMIT_EXCEEDED`):
  stop the push at once; retrying would only burn the next window's allowance.
- AuthError (401, 403 for a missing scope): stop; the token or the app's scopes must be fixed.
- RequestRejected (400, 422, Salesforce 300): the request as a whole was refused; the batch is
  split to find the records at fault (see `batching`).
- ContractViolation (an answer of the wrong shape): stop, naming what was wrong.
- MissingCrmSetting: a variable is missing or invalid; the message names it.

Messages never contain tokens or URLs (a generic target's URL may carry a key): they carry the
service, the HTTP status, the CRM's error code and its correlation id.
"""

from __future__ import annotations

from resources.crm.models import AUTH, TRANSIENT, VALIDATION
from resources.http_base import ApiError


class CrmError(ApiError):
    """Base class; `kind` is the stable name shown in Dagster failure metadata."""

    # The class given to records a stopped push could not send (see resources.crm.models).
    rejection_class = TRANSIENT
    redacted_fields = ("code", "correlation_id")

    def __init__(
        self,
        message: str,
        *,
        service: str,
        status: int | None = None,
        code: str | None = None,
        correlation_id: str | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code)
        self.service = service
        self.correlation_id = correlation_id

    def details(self) -> dict[str, str | int | None]:
        return {
            "crm": self.service,
            "crm_error_code": self.code,
            "crm_correlation_id": self.correlation_id,
        }


class RateLimited(CrmError):
    kind = "rate_limited"
    retryable = True

    def __init__(
        self,
        message: str,
        *,
        service: str,
        status: int | None = None,
        code: str | None = None,
        correlation_id: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(
            message, service=service, status=status, code=code, correlation_id=correlation_id
        )
        # Already parsed and capped by the client; the shared retry policy honours it.
        self.retry_after_s = retry_after_s


class TransientError(CrmError):
    kind = "transient"
    retryable = True


class ApiLimitExhausted(CrmError):
    kind = "api_limit_exhausted"


class AuthError(CrmError):
    kind = "auth"
    rejection_class = AUTH


class RequestRejected(CrmError):
    kind = "request_rejected"
    rejection_class = VALIDATION


class ContractViolation(CrmError):
    kind = "contract_violation"


class MissingCrmSetting(CrmError, ValueError):
    kind = "configuration"

    def __init__(self, message: str, *, service: str, variable: str) -> None:
        super().__init__(message, service=service)
        self.variable = variable

    def metadata(self) -> dict[str, str | int]:
        return super().metadata() | {"variable": self.variable}


class DemoModeRefused(CrmError):
    """Demo mode pushes simulated data only to CRM fakes on loopback, never to a real CRM."""

    kind = "demo_mode"


class TargetNotFound(CrmError):
    """The object type, sObject or external id field does not exist (404): a setup problem."""

    kind = "target_not_found"
