"""What a CRM client hands back: per-batch outcomes keyed by the record's external id."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from resources.http_base import CallStats as BaseCallStats

# What a push does to CRM records whose source row was deleted (a mapping's `on_delete`), and the
# source column that says so: defined here, read by the mapping loader and the push alike.
KEEP, FLAG, ARCHIVE = "keep", "flag", "archive"
ON_DELETE_MODES = (KEEP, FLAG, ARCHIVE)
DELETED_SOURCE = "deleted_at"

# Rejection classes: what the next run does with the record.
VALIDATION = "validation"  # the CRM refused the content: kept until the content changes
TRANSIENT = "transient"  # the CRM could not take it now: retried on the next run
AUTH = "auth"  # the token or its scopes were refused: retried once the credentials are fixed
REJECTION_CLASSES = (VALIDATION, TRANSIENT, AUTH)

Record = dict[str, Any]


@dataclass(frozen=True)
class Rejection:
    """One record the CRM did not take, and why, in words a user can act on."""

    key: str
    reason: str
    error_class: str


@dataclass(frozen=True)
class BatchResult:
    """The outcome of one or more requests: every record sent is in exactly one bucket.

    `accepted` holds keys the CRM took without saying whether it created or updated them (the
    generic preset); the caller classifies them against its push state.
    """

    created: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    accepted: tuple[str, ...] = ()
    rejected: tuple[Rejection, ...] = ()
    crm_ids: dict[str, str] = field(default_factory=dict)
    archived: tuple[str, ...] = ()  # keys whose CRM record was archived (deleted) on request

    def __add__(self, other: BatchResult) -> BatchResult:
        return BatchResult(
            self.created + other.created,
            self.updated + other.updated,
            self.accepted + other.accepted,
            self.rejected + other.rejected,
            self.crm_ids | other.crm_ids,
            self.archived + other.archived,
        )

    @property
    def pushed(self) -> tuple[str, ...]:
        return self.created + self.updated + self.accepted

    @classmethod
    def all_rejected(cls, keys: Iterable[str], reason: str, error_class: str) -> BatchResult:
        return cls(rejected=tuple(Rejection(key, reason, error_class) for key in keys))


@dataclass(frozen=True)
class Archive:
    """One CRM record to archive: its external id, the CRM's own id if known, and why."""

    key: str
    crm_id: str | None
    reason: str


@dataclass
class CallStats(BaseCallStats):
    """What one client did, reported as asset metadata (never a token or a URL).

    Counted under the client's service; `requests`, `retries`, `rate_limited` and
    `seconds_waited` are its totals.
    """

    service: str = ""
    # Last limit figures the CRM reported, e.g. {"salesforce_api_usage": "10018/100000"}.
    limits: dict[str, str] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        return int(self.total("requests_by_endpoint"))

    def as_metadata(self) -> dict[str, int | float | str]:
        with self._lock:
            return super().as_metadata() | self.limits
