"""What the sync of one connection reports, as values free of Dagster.

`ConnectionOutcome` holds what each asset materialized (its metadata), the quality
checks, what each CRM push did (`PushOutcome`), the TikTok calls per asset, the log lines and the
failures, in the order they happened. `Markdown`, `Json` and `Timestamp` mark the kinds of value
the Dagster layer shows specially; `pipelines.defs.batch` turns all of it into Dagster events
(`dagster_metadata` converts those values).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from resources.crm.diff import PushPlan
from resources.crm.models import CallStats, Rejection
from resources.crm.push import PushReport
from transforms import Mapping

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
class PushOutcome:
    """What one mapping's push did for one connection (`report` is None on a dry run)."""

    mapping: Mapping
    plan: PushPlan
    refused: tuple[Rejection, ...]  # refused by the mapping itself
    report: PushReport | None
    stats: CallStats | None
    threshold: float
    forced: bool

    @property
    def total(self) -> int:
        return len(self.plan.hashes) + len(self.refused)

    @property
    def rejected(self) -> int:
        """Records not in the CRM after this run: refused by the mapping or the CRM, or held."""
        if self.report is None:
            return len(self.refused) + self.plan.held
        return len(self.refused) + len(self.report.rejected) + self.report.held


@dataclass(frozen=True)
class StepFailure:
    """What failed for a connection: the error, the asset it was syncing, and its mapping."""

    error: BaseException
    at: str | None  # None: before any asset (lookup, lease, token)
    mapping: Mapping | None = None  # the mapping being applied, for mapping and CRM steps


@dataclass
class ConnectionOutcome:
    """Everything one connection's sync did; `error` is set when it failed."""

    name: str
    materialized: dict[str, Metadata] = field(default_factory=dict)  # asset -> its metadata
    checks: list[CheckOutcome] = field(default_factory=list)
    pushes: dict[str, PushOutcome] = field(default_factory=dict)  # push mapping -> what it did
    log: list[tuple[int, str]] = field(default_factory=list)
    failures: list[StepFailure] = field(default_factory=list)  # in the order they happened
    calls: dict[str, Metadata] = field(default_factory=dict)  # TikTok asset -> its calls

    def fail(self, error: BaseException, at: str | None, mapping: Mapping | None = None) -> None:
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
