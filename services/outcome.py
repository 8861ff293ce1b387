"""What the sync of one connection reports: metadata per asset, check outcomes, log lines.

Plain values only, so the layer stays free of Dagster; `Markdown`, `Json` and `Timestamp` mark the
kinds of value the Dagster layer shows specially (`pipelines.defs.batch.dagster_metadata`
converts them).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from services.crm_push import PushOutcome

Metadata = dict[str, Any]


@dataclass(frozen=True)
class Markdown:
    text: str


@dataclass(frozen=True)
class Json:
    value: Any


@dataclass(frozen=True)
class Timestamp:
    """A moment (seconds since the epoch, UTC), shown as a date and time, not a number."""

    epoch_s: float


@dataclass(frozen=True)
class CheckOutcome:
    """One quality check of one connection; `blocking` failures hold its CRM records back."""

    asset: str
    name: str
    passed: bool
    metadata: Metadata = field(default_factory=dict)
    description: str | None = None
    warn_only: bool = False
    blocking: bool = False


@dataclass(frozen=True)
class StepFailure:
    """What failed for a connection: the error, the asset it was syncing, and its mapping."""

    error: BaseException
    at: str | None  # None: before any asset (lookup, lease, token)
    mapping: Any = None  # the transforms.Mapping being applied, for CRM steps


@dataclass
class ConnectionOutcome:
    """Everything one connection's sync did; `error` is set when it failed."""

    name: str
    materialized: dict[str, Metadata] = field(default_factory=dict)  # asset -> its metadata
    observed: dict[str, Metadata] = field(default_factory=dict)  # dry runs observe only
    checks: list[CheckOutcome] = field(default_factory=list)
    pushes: dict[str, PushOutcome] = field(default_factory=dict)  # push mapping -> what it did
    log: list[tuple[int, str]] = field(default_factory=list)
    failures: list[StepFailure] = field(default_factory=list)  # in the order they happened
    calls: dict[str, Metadata] = field(default_factory=dict)  # TikTok asset -> its calls

    def fail(self, error: BaseException, at: str | None, mapping: Any = None) -> None:
        self.failures.append(StepFailure(error, at, mapping))

    @property
    def error(self) -> BaseException | None:
        return self.failures[0].error if self.failures else None

    def api_total(self, key: str) -> int:
        """A call count (`api_requests`, `api_retries`, `api_rate_limited`) over its assets."""
        return sum(int(calls.get(key, 0)) for calls in self.calls.values())

    @property
    def ok(self) -> bool:
        return not self.failures

    def info(self, message: str) -> None:
        self.log.append((logging.INFO, message))

    def warning(self, message: str) -> None:
        self.log.append((logging.WARNING, message))
