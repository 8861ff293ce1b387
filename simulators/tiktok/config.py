"""Knobs of the TikTok simulator.

Every behaviour that TikTok's docs leave open (tiktok-api.md section 12) is a knob here, so the
client can be tested against each possible answer instead of the one we happen to guess.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

DEMO_CLIENT_KEY = "sbawdemo00000000tiktokcrmsync"
# Deliberately fake: the simulator is public, so its "secret" is too.
DEMO_CLIENT_SECRET = "demo-secret-not-a-real-tiktok-secret"

# Video ids pack (create_time << 32) | (account << 22) | index, like TikTok's time-prefixed ids.
ACCOUNT_BITS = 10
INDEX_BITS = 22
MAX_ACCOUNTS = 1 << ACCOUNT_BITS
MAX_VIDEOS_PER_ACCOUNT = (1 << INDEX_BITS) - 1

OLD_DOCS_ACCESS_TTL = 86_400
OLD_DOCS_REFRESH_TTL = 31_536_000
NEW_DOCS_ACCESS_TTL = 7_200
NEW_DOCS_REFRESH_TTL = 15_552_000

RateLimitKey = Literal["app", "token"]
ErrorDataKey = Literal["empty", "absent"]
PkceEncoding = Literal["hex", "base64url", "either"]


# A second app `simulator serve` accepts, for rehearsing the live path (a live app's credentials,
# exported as TIKTOK_CLIENT_KEY/SECRET) against the simulator. Public like the demo's.
REHEARSAL_CLIENT_KEY = "awrehearsal0000tiktokcrmsync"
REHEARSAL_CLIENT_SECRET = "rehearsal-secret-not-a-real-tiktok-secret"


def _demo_apps() -> Mapping[str, str]:
    return MappingProxyType({DEMO_CLIENT_KEY: DEMO_CLIENT_SECRET})


@dataclass(frozen=True)
class SimulatorConfig:
    """Everything that shapes the simulator's data and behaviour; change at runtime via `set`."""

    seed: int = 42
    accounts: int = 5
    videos_per_account: int = 30
    # Every n-th account (index % n == n - 1) has no videos, like the recorded empty account.
    zero_video_every: int = 4
    # Per-account video counts that win over the two knobs above (e.g. {0: 100_000} for benchmarks).
    video_count_overrides: Mapping[int, int] = field(default_factory=lambda: MappingProxyType({}))
    clock: Callable[[], float] = time.time
    port: int = 0
    latency_ms: tuple[int, int] = (0, 0)
    error_rate: float = 0.0
    # None disables rate limiting (benchmarks that measure the client, not the backoff).
    rate_limit_per_minute: int | None = 600
    rate_limit_key: RateLimitKey = "app"
    access_token_ttl: int = OLD_DOCS_ACCESS_TTL
    refresh_token_ttl: int = OLD_DOCS_REFRESH_TTL
    rotate_refresh_tokens: bool = True
    # Section 12.1: does a refresh restart the refresh token's life, or count from the grant?
    refresh_extends_lifetime: bool = False
    error_data_key: ErrorDataKey = "empty"
    oauth_error_status: int = 400
    video_list_requires_fields: bool = True
    pkce: PkceEncoding = "either"
    apps: Mapping[str, str] = field(default_factory=_demo_apps)
    redirect_uris: tuple[str, ...] = ()
    timeout_fault_seconds: float = 30.0

    def __post_init__(self) -> None:
        # Read-only views, so a config shared between threads cannot be mutated behind the lock.
        object.__setattr__(self, "apps", MappingProxyType(dict(self.apps)))
        overrides = MappingProxyType(dict(self.video_count_overrides))
        object.__setattr__(self, "video_count_overrides", overrides)
        object.__setattr__(self, "redirect_uris", tuple(self.redirect_uris))
        object.__setattr__(self, "latency_ms", tuple(self.latency_ms))
        self._validate()

    def _validate(self) -> None:
        if not 0 <= self.accounts <= MAX_ACCOUNTS:
            raise ValueError(f"accounts must be within 0..{MAX_ACCOUNTS}")
        counts = [self.videos_per_account, *self.video_count_overrides.values()]
        if any(not 0 <= count <= MAX_VIDEOS_PER_ACCOUNT for count in counts):
            raise ValueError(f"video counts must be within 0..{MAX_VIDEOS_PER_ACCOUNT}")
        if self.zero_video_every < 0:
            raise ValueError("zero_video_every must be >= 0 (0 disables)")
        low, high = self.latency_ms
        if not 0 <= low <= high:
            raise ValueError("latency_ms must be (low, high) with 0 <= low <= high")
        if not 0.0 <= self.error_rate <= 1.0:
            raise ValueError("error_rate must be a probability")
        if self.rate_limit_per_minute is not None and self.rate_limit_per_minute < 1:
            raise ValueError("rate_limit_per_minute must be >= 1, or None to disable")
        self._validate_choices()

    def _validate_choices(self) -> None:
        choices: dict[str, tuple[object, tuple[object, ...]]] = {
            "rate_limit_key": (self.rate_limit_key, ("app", "token")),
            "error_data_key": (self.error_data_key, ("empty", "absent")),
            "pkce": (self.pkce, ("hex", "base64url", "either")),
        }
        for name, (value, allowed) in choices.items():
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, not {value!r}")
        if not 200 <= self.oauth_error_status <= 599:
            raise ValueError("oauth_error_status must be an HTTP status")
        if self.access_token_ttl <= 0 or self.refresh_token_ttl <= 0:
            raise ValueError("token lifetimes must be positive")

    def video_count_of(self, account: int) -> int:
        """Videos generated for an account before any deletion."""
        if account in self.video_count_overrides:
            return self.video_count_overrides[account]
        every = self.zero_video_every
        if every and account % every == every - 1:
            return 0
        return self.videos_per_account


# Knobs that change the generated data; changing one at runtime rebuilds the catalog.
DATA_KNOBS = frozenset(
    {"seed", "accounts", "videos_per_account", "zero_video_every", "video_count_overrides"}
)
