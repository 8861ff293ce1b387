"""The fault matrix's cases, as data: how each fault breaks the victim and what must follow.

`tests/reliability/test_fault_matrix.py` runs them; `python -m tests.reliability.fault_table`
writes their expected and observed outcomes into docs/reliability.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pytest

from resources.tiktok.oauth import TokenGrant
from simulators.tiktok import ManualClock
from tests.pipelines.helpers import ALL_SCOPES

if TYPE_CHECKING:
    from tests.reliability.test_fault_matrix import World

VICTIM = "victim"
VICTIM_ACCOUNT = 1
TIMEOUT_CASE_S = 0.5  # the timeout case's client timeout; the simulator holds that answer longer
REPORT_ENV = "FAULT_MATRIX_REPORT"  # a JSON-lines file the observed outcomes are appended to
RELIABILITY_DOC = Path(__file__).parents[2] / "docs" / "reliability.md"

Outcome = Literal["retried", "refreshed", "recovered", "skipped", "failed"]
VictimRows = Literal["all", "profile", "videos", "none"]
Arrange = Callable[["World"], None]


# --- how to break the victim --------------------------------------------------------------------


def aimed(endpoint: str, fault: str, count: int = 1, after: int = 0) -> Arrange:
    """`count` answers of `endpoint` to the victim's tokens misbehave, after `after` good ones."""

    def arrange(world: World) -> None:
        world.sim.inject(endpoint, fault, count, account=VICTIM_ACCOUNT, after=after)

    return arrange


def request_times_out(world: World) -> None:
    world.request_timeout_s = TIMEOUT_CASE_S
    world.sim.set(timeout_fault_seconds=4 * TIMEOUT_CASE_S)
    aimed("video_list", "timeout")(world)


def access_token_expired(world: World) -> None:
    world.sim.expire_access_tokens(VICTIM_ACCOUNT)  # TikTok rejects a token we still trust


def refresh_answer(fault: str, count: int = 1) -> Arrange:
    """The victim must refresh, and the token endpoint misbehaves; no one else refreshes."""

    def arrange(world: World) -> None:
        access_token_expired(world)
        world.sim.inject("oauth_token", fault, count)

    return arrange


def grant_revoked(world: World) -> None:
    world.sim.revoke_account(VICTIM_ACCOUNT)  # the user removed the app in TikTok


def refresh_token_expired(world: World) -> None:
    """The victim's refresh token outlived its (one hour) life; the others' are fresh."""
    clock, usual_ttl = ManualClock(time.time()), world.sim.config.refresh_token_ttl
    world.sim.set(clock=clock, refresh_token_ttl=3_600)
    world.connect(VICTIM)
    world.sim.set(refresh_token_ttl=usual_ttl)
    clock.advance(2 * 3_600)
    world.sim.expire_access_tokens(VICTIM_ACCOUNT)  # so the run has to refresh


def scope_not_granted(world: World) -> None:
    world.connect(VICTIM, ["user.info.basic", "user.info.profile"])  # no stats, no video.list


def scope_withdrawn(world: World) -> None:
    """TikTok's grant holds only user.info.basic; the state database still believes in all four."""
    world.connect(VICTIM, ["user.info.basic"])
    stored = world.harness.store.get(VICTIM)
    grant = TokenGrant(
        open_id=stored.open_id,
        scopes=frozenset(ALL_SCOPES),
        expires_in=86_400,
        refresh_expires_in=86_400,
        issued_at=stored.access_expires_at - 86_400,
        access_token=stored.access_token,
        refresh_token=stored.refresh_token,
    )
    world.harness.store.save_grant(VICTIM, stored.app, grant)


# --- the matrix ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FaultCase:
    fault: str  # the row's name in docs/reliability.md
    where: str  # where the fault is injected
    arrange: Arrange
    outcome: Outcome
    asset: str  # the victim's asset whose outcome is checked
    facts: Mapping[str, object] = field(default_factory=dict)  # exact metadata values
    says: str = ""  # in the failure message, or in the skipped reason
    victim_rows: VictimRows = "all"  # which of the victim's tables hold complete rows
    bug: str = ""  # a known bug: the case is expected to fail (strict xfail) until it is fixed

    def expected(self) -> str:
        """The expected outcome, as docs/reliability.md states it."""
        facts = ", ".join(f"{key}={value}" for key, value in self.facts.items())
        text = f"{self.outcome} in {self.asset}" + (f" ({facts})" if facts else "")
        if self.says:
            text += f", {'message' if self.outcome == 'failed' else 'reason'} names '{self.says}'"
        return f"{text}; victim rows: {ROWS_TEXT[self.victim_rows]}"

    def param(self) -> object:
        marks = [pytest.mark.xfail(strict=True, reason=self.bug)] if self.bug else []
        return pytest.param(self, id=self.fault, marks=marks)


ROWS_TEXT = {
    "all": "complete",
    "profile": "profile complete, no video rows",
    "videos": "videos complete, no profile rows",
    "none": "none",
}
P, V = "tiktok_profile", "tiktok_videos"
LIST, INFO = "`/v2/video/list/`", "`/v2/user/info/`"
RECONNECT = "tiktok-crm-sync connections reconnect victim"

FAULT_MATRIX = [
    # Transport: retried per request with (zeroed) backoff; the circuit opens after 5 in a row.
    FaultCase(
        "429 burst",
        f"{LIST}, 2 answers",
        aimed("video_list", "rate_limited", 2),
        "retried",
        V,
        {"api_retries": 2, "api_rate_limited": 2},
    ),
    # Issue 13: a 429 that the budget allowed cuts the learned limit, and retries outlast
    # TikTok's window instead of giving up after five answers.
    FaultCase(
        "429 storm",
        f"{LIST}, 5 answers",
        aimed("video_list", "rate_limited", 5),
        "retried",
        V,
        {"api_retries": 5, "api_rate_limited": 5},
    ),
    FaultCase(
        "5xx burst (500 internal_error)",
        f"{LIST}, 3 answers",
        aimed("video_list", "server_error", 3),
        "retried",
        V,
        {"api_retries": 3},
    ),
    FaultCase(
        "5xx storm (500 internal_error)",
        f"{INFO}, 5 answers",
        aimed("user_info", "server_error", 5),
        "failed",
        P,
        {"error_kind": "transient", "circuit_opened": 1},
        "circuit open",
        "videos",
    ),
    FaultCase(
        "502 with an HTML body",
        f"{LIST}, 2 answers",
        aimed("video_list", "bad_gateway", 2),
        "retried",
        V,
        {"api_retries": 2},
    ),
    FaultCase(
        "timeout",
        f"{LIST}, 1 answer held past the client timeout",
        request_times_out,
        "retried",
        V,
        {"api_retries": 1},
    ),
    FaultCase(
        "connection reset",
        f"{LIST}, 2 answers (TCP RST)",
        aimed("video_list", "connection_reset", 2),
        "retried",
        V,
        {"api_retries": 2},
    ),
    # A body cut off or garbled on the way is retried like a blip (issue 18); a decodable body
    # outside the contract is never retried and the failing asset's transaction stores nothing.
    FaultCase(
        "truncated JSON",
        f"{LIST}, page 2",
        aimed("video_list", "truncated_json", after=1),
        "retried",
        V,
        {"api_retries": 1},
    ),
    FaultCase(
        "malformed JSON",
        f"{INFO}, 1 answer",
        aimed("user_info", "malformed_json"),
        "retried",
        P,
        {"api_retries": 1},
    ),
    FaultCase(
        "missing envelope",
        f"{LIST}, page 1",
        aimed("video_list", "missing_envelope"),
        "failed",
        V,
        {"error_kind": "contract_violation"},
        "no `error` envelope",
        "profile",
    ),
    FaultCase(
        "wrong types",
        f"{LIST}, page 3 (the last)",
        aimed("video_list", "wrong_types", after=2),
        "failed",
        V,
        {"error_kind": "contract_violation"},
        "data.",
        "profile",
    ),
    # Tokens and grants.
    FaultCase(
        "token expiry mid-page",
        f"{LIST}, page 2 answers 401 access_token_invalid",
        aimed("video_list", "token_expired", after=1),
        "refreshed",
        V,
        {"token_refreshes": 1},
    ),
    FaultCase(
        "access token expired before the run",
        "simulator: the victim's access tokens expire",
        access_token_expired,
        "refreshed",
        P,
        {"token_refreshes": 1},
    ),
    FaultCase(
        "5xx on token refresh",
        "`/v2/oauth/token/`, 1 answer (only the victim refreshes)",
        refresh_answer("server_error"),
        "refreshed",
        P,
        {"token_refreshes": 1},
    ),
    FaultCase(
        "token refresh answer cut off",
        "`/v2/oauth/token/`, 1 answer truncated after TikTok rotated the refresh token",
        refresh_answer("truncated_json"),
        # Retried like a blip; TikTok already rotated the refresh token we hold, so the retry is
        # refused (invalid_grant): the grant is gone, and saying so now beats failing tomorrow.
        "failed",
        P,
        {"error_kind": "needs_reconnect"},
        RECONNECT,
        "none",
    ),
    FaultCase(
        "revoked grant",
        "simulator: the victim's grant is revoked",
        grant_revoked,
        "failed",
        P,
        {"error_kind": "needs_reconnect"},
        RECONNECT,
        "none",
    ),
    FaultCase(
        "expired refresh token",
        "simulator: refresh token past its life, access token rejected",
        refresh_token_expired,
        "failed",
        P,
        {"error_kind": "needs_reconnect"},
        RECONNECT,
        "none",
    ),
    FaultCase(
        "missing scope (not granted)",
        "victim connected without user.info.stats and video.list",
        scope_not_granted,
        "skipped",
        V,
        {},
        "video.list",
        "profile",
    ),
    FaultCase(
        "missing scope (withdrawn)",
        "TikTok grants user.info.basic only; the state database believes all four",
        scope_withdrawn,
        "skipped",
        V,
        {},
        "video.list",
        "profile",
    ),
    # Paging: anomalies are asked again once and duplicates dropped; a persistent one fails.
    FaultCase(
        "cursor loop (once)",
        f"{LIST}, page 2 answers with the cursor it was asked for",
        aimed("video_list", "cursor_loop", after=1),
        "recovered",
        V,
        {"pages_repeated": 1, "stop_reason": "has_more_false"},
    ),
    FaultCase(
        "cursor loop (persistent)",
        f"{LIST}, page 2 and its one re-request answer with the cursor asked for",
        aimed("video_list", "cursor_loop", 2, after=1),
        "failed",
        V,
        {"error_kind": "contract_violation"},
        "nothing from this run was stored",
        "profile",
    ),
    FaultCase(
        "duplicate items",
        f"{LIST}, pages 2 and 3 repeat earlier videos",
        aimed("video_list", "duplicate_items", 2, after=1),
        "recovered",
        V,
        {"stop_reason": "has_more_false"},
    ),
    FaultCase(
        "empty page with has_more",
        f"{LIST}, 2 answers",
        aimed("video_list", "empty_page_has_more", 2),
        "recovered",
        V,
        {"stop_reason": "has_more_false"},
    ),
    FaultCase(
        "short page with has_more",
        f"{LIST}, 2 answers",
        aimed("video_list", "short_page", 2),
        "recovered",
        V,
        {"stop_reason": "has_more_false"},
    ),
]
