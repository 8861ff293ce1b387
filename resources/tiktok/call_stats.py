"""What one Display API client did, per endpoint: requests, 429s, retries, refreshes and waits.

One client serves one connection, so these are per connection; each counter is also kept per
endpoint (token refreshes under the endpoint whose request needed them, token-call retries under
`oauth_token`). Requests, retries, 429s and backoff waits are counted by the shared base
(`resources.http_base.CallStats`); this adds what only TikTok's client knows: token refreshes and
rejections, waits in the shared request budget, and the limits it learned. Updates take a lock,
so another thread may read the figures while a sync runs.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from resources.http_base import CallStats as BaseCallStats
from resources.ratelimit.budget import Admission


def _by_endpoint(counts: Counter[str] | dict[str, Any]) -> str:
    parts = [f"{name}={_number(count)}" for name, count in sorted(counts.items()) if count]
    return ", ".join(parts) or "none"


def _number(value: float) -> int | float:
    return round(value, 3) if isinstance(value, float) else value


@dataclass
class CallStats(BaseCallStats):
    """What one client (one connection) did, per endpoint, reported as asset metadata."""

    refreshes_by_endpoint: Counter[str] = field(default_factory=Counter)
    token_rejections_by_endpoint: Counter[str] = field(default_factory=Counter)
    budget_waits_by_endpoint: Counter[str] = field(default_factory=Counter)
    budget_wait_s_by_endpoint: Counter[str] = field(default_factory=Counter)
    limit_by_endpoint: dict[str, int] = field(default_factory=dict)
    configured_by_endpoint: dict[str, int] = field(default_factory=dict)
    circuit_opened: int = 0

    @property
    def requests(self) -> Counter[str]:
        """Requests sent, per endpoint."""
        return self.requests_by_endpoint

    def admitted(self, admission: Admission) -> None:
        # Not a request yet: it is counted when sent (`count_request`), after the token check.
        with self._lock:
            if admission.waited_s > 0:
                self.budget_waits_by_endpoint[admission.endpoint] += 1
                self.budget_wait_s_by_endpoint[admission.endpoint] += admission.waited_s
            self.limit_by_endpoint[admission.endpoint] = admission.limit
            self.configured_by_endpoint[admission.endpoint] = admission.configured

    def opened_circuit(self) -> None:
        with self._lock:
            self.circuit_opened += 1

    def limit_lowered(self, endpoint: str, limit: int) -> None:
        with self._lock:
            self.limit_by_endpoint[endpoint] = limit

    @property
    def refreshes(self) -> int:
        return int(self.total("refreshes_by_endpoint"))

    @property
    def budget_wait_s(self) -> float:
        return float(self.total("budget_wait_s_by_endpoint"))

    @property
    def backoff_wait_s(self) -> float:
        """TikTok asks for no wait (no Retry-After): every wait before a retry is backoff."""
        return float(self.total("waited_s_by_endpoint"))

    @property
    def seconds_waited(self) -> float:
        return self.budget_wait_s + self.backoff_wait_s

    def learned_limits(self) -> dict[str, int]:
        """Endpoints whose limit in force is below the configured one: what TikTok taught us."""
        with self._lock:
            return {
                endpoint: limit
                for endpoint, limit in self.limit_by_endpoint.items()
                if limit < self.configured_by_endpoint.get(endpoint, limit)
            }

    def as_metadata(self) -> dict[str, int | float | str]:
        learned = self.learned_limits()
        with self._lock:
            return super().as_metadata() | {
                "token_refreshes": self.refreshes,
                "token_rejected": int(self.total("token_rejections_by_endpoint")),
                "budget_waits": int(self.total("budget_waits_by_endpoint")),
                "seconds_waited_for_budget": round(self.budget_wait_s, 3),
                "seconds_waited_in_backoff": round(self.backoff_wait_s, 3),
                "api_requests_by_endpoint": _by_endpoint(self.requests_by_endpoint),
                "api_rate_limited_by_endpoint": _by_endpoint(self.rate_limited_by_endpoint),
                "api_retries_by_endpoint": _by_endpoint(self.retries_by_endpoint),
                "token_refreshes_by_endpoint": _by_endpoint(self.refreshes_by_endpoint),
                "budget_waits_by_endpoint": _by_endpoint(self.budget_waits_by_endpoint),
                "rate_limit_per_minute_by_endpoint": _by_endpoint(self.limit_by_endpoint),
                "rate_limit_learned": _by_endpoint(learned),
                "circuit_opened": self.circuit_opened,
            }
