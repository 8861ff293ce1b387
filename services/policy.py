"""The sync policy: how each connection's videos are read on a given day, and what that costs.

By default every sync is `full`: the whole video list is read again (one request per 20 videos),
so every live video's metrics and caption are current every day and deletions are marked. For
very large accounts, `incremental` reads only new videos plus the metrics of videos posted in the
last `lookback_days`, with a full re-read every `full_every_days` days to catch the rest.
Configured without code through the environment; see docs/operations.md.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from resources.warehouse.reads import ConnectionSize

FULL = "full"
INCREMENTAL = "incremental"
MODES = (FULL, INCREMENTAL)
MODE_VARIABLE = "TIKTOK_SYNC_MODE"
FULL_EVERY_VARIABLE = "TIKTOK_FULL_SYNC_EVERY_DAYS"
LOOKBACK_VARIABLE = "TIKTOK_LOOKBACK_DAYS"
DEFAULT_FULL_EVERY_DAYS = 7
DEFAULT_LOOKBACK_DAYS = 30
PAGE_SIZE = 20  # videos per /v2/video/list/ page and ids per /v2/video/query/ request
MINUTES_PER_DAY = 24 * 60


class PolicyError(ValueError):
    """A sync-policy variable is malformed; the message names it and what to write."""


@dataclass(frozen=True)
class SyncPolicy:
    mode: str = FULL
    full_every_days: int = DEFAULT_FULL_EVERY_DAYS  # incremental only; 0: never a full re-read
    lookback_days: int = DEFAULT_LOOKBACK_DAYS

    def mode_for(self, last_full: date | None, today: date) -> str:
        """The mode of one connection's sync today, given the day of its last full sync."""
        if self.mode == FULL or last_full is None:
            return FULL
        if self.full_every_days and (today - last_full).days >= self.full_every_days:
            return FULL
        return INCREMENTAL


def _whole(environ: Mapping[str, str], name: str, default: int, high: int) -> int:
    raw = (environ.get(name) or "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) > high:
        raise PolicyError(f"{name} must be a whole number of days from 0 to {high}, not {raw!r}")
    return int(raw)


def policy_from_env(environ: Mapping[str, str] = os.environ) -> SyncPolicy:
    mode = (environ.get(MODE_VARIABLE) or FULL).strip().lower()
    if mode not in MODES:
        raise PolicyError(
            f"{MODE_VARIABLE} must be 'full' (re-read every video daily, the default) or "
            f"'incremental' (new videos plus recent metrics, full every "
            f"{FULL_EVERY_VARIABLE} days), not {mode!r}"
        )
    return SyncPolicy(
        mode=mode,
        full_every_days=_whole(environ, FULL_EVERY_VARIABLE, DEFAULT_FULL_EVERY_DAYS, 365),
        lookback_days=_whole(environ, LOOKBACK_VARIABLE, DEFAULT_LOOKBACK_DAYS, 3650),
    )


@dataclass(frozen=True)
class RequestEstimate:
    requests: dict[str, int]  # endpoint -> requests
    limits: dict[str, int]  # endpoint -> requests per minute

    @property
    def minutes(self) -> float:
        """The rate-limit bound: the slowest endpoint's requests over its limit."""
        return max(
            (count / self.limits[endpoint] for endpoint, count in self.requests.items() if count),
            default=0.0,
        )

    @property
    def fits_a_day(self) -> bool:
        return self.minutes <= MINUTES_PER_DAY

    def advice(self) -> str:
        return (
            f"the daily sync needs {sum(self.requests.values())} TikTok requests "
            f"({', '.join(f'{k}={v}' for k, v in self.requests.items())}), about "
            f"{self.minutes:.0f} minutes at TIKTOK_RATE_LIMITS, more than a day. Set "
            f"{MODE_VARIABLE}=incremental with {FULL_EVERY_VARIABLE}=7 (or more), lower "
            f"{LOOKBACK_VARIABLE}, or raise TIKTOK_RATE_LIMITS if TikTok granted your app more"
        )


def estimate_requests(
    sizes: Iterable[ConnectionSize], mode: str, limits: Mapping[str, int]
) -> RequestEstimate:
    """Requests one day's sync needs: a full read lists every video; an incremental one reads the
    newest page and re-queries the lookback's videos."""
    requests = {"user_info": 0, "video_list": 0, "video_query": 0}
    for size in sizes:
        requests["user_info"] += 1
        if mode == FULL:
            requests["video_list"] += max(1, math.ceil(size.videos / PAGE_SIZE))
        else:
            requests["video_list"] += 1
            requests["video_query"] += math.ceil(size.recent_videos / PAGE_SIZE)
    return RequestEstimate(requests, dict(limits))
