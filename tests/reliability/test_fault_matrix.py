"""Fault matrix: one fault aimed at one of three connections, then the daily sync for all three.

Round trip per case: the simulator breaks only the victim's account (a fault aimed at its tokens, a
revoked grant, a withdrawn scope, ...) -> the real `tiktok_daily_sync` job, one in-process Dagster
run per connection as `pipelines.runner.run_daily_sync` launches them -> the warehouse. Each case
checks what a user sees for the victim (retried and complete, skipped with the reason, or failed
with the error kind and what to do), that each victim table holds either its complete rows or none
at all (no partial write), and that both bystanders, synced before and after the victim, store
exactly what a clean run stores.

The cases are data (FAULT_MATRIX in fault_cases.py). `python -m tests.reliability.fault_table` runs
them and writes the observed outcomes into docs/reliability.md. Backoff is zero and the budget
generous, so nothing sleeps for real except the timeout case, whose client waits TIMEOUT_CASE_S
once.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Mapping

import dagster as dg
import httpx
import pytest

from pipelines.defs.batch import CALLS_KEY
from pipelines.defs.sync.jobs import DAILY_SYNC_JOB
from pipelines.runner import QUIET_CONSOLE, add_partitions
from resources.configurable import TikTokResource
from resources.connections.store import ACTIVE, NEEDS_RECONNECT
from resources.warehouse import tiktok_tables as tables
from services.crm_records import warehouse_mappings
from simulators.tiktok import TikTokSimulator
from tests.pipelines.helpers import ALL_SCOPES, Harness, connect, materializations, use_live_app
from tests.reliability.fault_cases import (
    FAULT_MATRIX,
    RELIABILITY_DOC,
    REPORT_ENV,
    ROWS_TEXT,
    VICTIM,
    VICTIM_ACCOUNT,
    FaultCase,
    P,
    V,
    VictimRows,
)
from tests.simulators.harness import Harness as SimulatorCalls

SYNC_ORDER = ("bystander-a", VICTIM, "bystander-b")  # one bystander syncs before, one after
ACCOUNTS = {"bystander-a": 0, VICTIM: VICTIM_ACCOUNT, "bystander-b": 2}
GENEROUS_LIMITS = "user_info=60000,video_list=60000,video_query=60000"
REQUEST_TIMEOUT_S = 10.0  # far above a loopback answer, so no case meets a spurious timeout
# Per table: row count and natural keys (snapshot_date left out, so a run across midnight agrees).
Stored = dict[str, tuple[int, frozenset[tuple]]]


# --- the world: three connections on one simulator, one daily-sync run per connection ----------


@functools.cache
def daily_sync_job() -> dg.JobDefinition:
    # Loaded once for the module: the resources it binds from the environment are replaced per run.
    from pipelines.definitions import defs

    return defs().resolve_job_def(DAILY_SYNC_JOB)


@functools.cache
def table_sources() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Every table the daily sync writes: its source ("profile" or "video") and natural key."""
    found = {
        tables.PROFILES: ("profile", tables.PROFILE_KEY),
        tables.PROFILE_STATS_DAILY: ("profile", tables.PROFILE_STATS_KEY),
        tables.VIDEOS: ("video", tables.VIDEO_KEY),
        tables.VIDEO_METRICS_DAILY: ("video", tables.VIDEO_METRICS_KEY),
    }
    for mapping in warehouse_mappings():
        found[mapping.target.object] = (mapping.source, tuple(mapping.key))
    return found


class World:
    """Connected accounts, their state and warehouse databases, and the job's resources."""

    def __init__(self, simulator: TikTokSimulator, harness: Harness) -> None:
        self.sim = simulator
        self.harness = harness
        self.request_timeout_s = REQUEST_TIMEOUT_S

    def connect(self, name: str, scopes: list[str] = ALL_SCOPES) -> None:
        connect(self.sim, self.harness.store, name, ACCOUNTS[name], scopes)

    def sync_all(self) -> dict[str, dg.ExecuteInProcessResult]:
        """The real daily sync job, one run per connection (the runner's order, tags, config)."""
        instance = self.harness.instance
        add_partitions(instance, SYNC_ORDER)
        tiktok = TikTokResource(
            api_base_url=self.sim.base_url,
            backoff_cap_s=0.0,
            request_timeout_s=self.request_timeout_s,
        )
        return {
            name: daily_sync_job().execute_in_process(
                instance=instance,
                partition_key=name,
                raise_on_error=False,
                run_config=QUIET_CONSOLE,
                tags={"connection": name, "launched_by": "tiktok-crm-sync"},
                resources={**self.harness.resources, "tiktok": tiktok},
            )
            for name in SYNC_ORDER
        }

    def stored(self, name: str) -> Stored:
        warehouse, found = self.harness.warehouse, {}
        for table, (_source, key) in table_sources().items():
            rows = warehouse.rows(table, connection_name=name) if warehouse.has_table(table) else []
            columns = [column for column in key if column != "snapshot_date"]
            found[table] = (len(rows), frozenset(tuple(row[c] for c in columns) for row in rows))
        return found


@pytest.fixture
def world(simulator, tmp_path):
    use_live_app(simulator)
    os.environ["TIKTOK_RATE_LIMITS"] = GENEROUS_LIMITS
    harness = Harness(simulator, tmp_path)
    # Entering the instance makes it Dagster's current defs-state storage for the whole test
    # (see tests/pipelines/test_extraction_faults.py).
    with harness.instance:
        world = World(simulator, harness)
        for name in SYNC_ORDER:
            world.connect(name)
        yield world


_CLEAN: dict[str, Stored] = {}


@pytest.fixture
def clean(simulator, tmp_path) -> dict[str, Stored]:
    """What a clean daily sync stores per connection; computed once, since the data is seeded."""
    if not _CLEAN:
        use_live_app(simulator)
        os.environ["TIKTOK_RATE_LIMITS"] = GENEROUS_LIMITS
        (tmp_path / "clean").mkdir()
        harness = Harness(simulator, tmp_path / "clean")
        with harness.instance:
            world = World(simulator, harness)
            for name in SYNC_ORDER:
                world.connect(name)
            results = world.sync_all()
            assert all(result.success for result in results.values())
            _CLEAN.update({name: world.stored(name) for name in SYNC_ORDER})
    return _CLEAN


# --- observing a run ----------------------------------------------------------------------------


def materialization(result: dg.ExecuteInProcessResult, asset: str) -> dict | None:
    events = materializations(result, asset)
    if not events:
        return None
    found = {k: v.value for k, v in events[-1].metadata.items()}
    return found | found.get(CALLS_KEY, {})  # the call counters' table, read as plain keys


def failure(result: dg.ExecuteInProcessResult, asset: str) -> tuple[str, dict] | None:
    """The failed step's message and metadata: one step syncs every asset of the connection
    (`asset` is the one the case aims at; the failure's metadata says where it happened)."""
    del asset
    for event in result.all_events:
        if event.is_step_failure:
            data = event.step_failure_data.user_failure_data
            if data is None:
                return event.step_failure_data.error.message, {}
            return data.description or "", {k: v.value for k, v in data.metadata.items()}
    return None


def rows_of(stored: Stored, clean: Stored) -> VictimRows | str:
    """Which groups of the victim's tables match a clean run; the others must hold nothing."""
    complete, empty = set(), set()
    for table, (source, _key) in table_sources().items():
        if stored[table] == clean[table]:
            complete.add(source)
        elif stored[table][0] == 0:
            empty.add(source)
        else:
            return f"partial: {table} holds {stored[table][0]} of {clean[table][0]} rows"
    if complete == {"profile", "video"}:
        return "all"
    if not complete:
        return "none"
    if complete & empty:
        return f"partial: some {sorted(complete & empty)} tables empty"
    return "profile" if complete == {"profile"} else "videos"


LOG_ID = re.compile(r"\b20\d{12}[0-9A-F]{20}\b")  # TikTok log ids differ between runs


def listed(meta: Mapping[str, object], keys: list[str], always: int) -> str:
    """`key=value` for the first `always` keys, then for the others that are not zero or none."""
    shown = [
        f"{key}={meta[key]}"
        for index, key in enumerate(dict.fromkeys(keys))
        if key in meta and (index < always or meta[key] not in (0, "none"))
    ]
    return ", ".join(shown)


def observed(case: FaultCase, result: dg.ExecuteInProcessResult, rows: str) -> str:
    """What the victim's run showed, as docs/reliability.md's "observed outcome" states it."""
    found = failure(result, case.asset)
    if found is not None:
        message, meta = found
        facts = listed(meta, ["error_kind", *case.facts, "api_requests"], len(case.facts) + 2)
        text = f"failed in {case.asset}: {facts}; message: '{LOG_ID.sub('<log_id>', message)}'"
    else:
        meta = materialization(result, case.asset) or {}
        keys = [*case.facts, "api_requests", "api_retries", "token_refreshes", "videos_listed"]
        keys += ["duplicates_dropped", "skipped_reason"]
        text = f"{'succeeded' if result.success else 'run failed'}; {case.asset}: "
        text += listed(meta, keys, len(case.facts) + 1)
        profile = materialization(result, P) or {}
        if profile.get("missing_scopes", "none") != "none":
            text += f"; {P}: missing_scopes={profile['missing_scopes']}"
            text += f", missing_scopes_reason={profile['missing_scopes_reason']}"
    for other in (P, V):
        found = failure(result, other) if other != case.asset else None
        if found is not None:
            text += f"; {other} also failed: {found[1].get('error_kind', found[0])}"
    return f"{text}; victim rows: {ROWS_TEXT.get(rows, rows)}"


def bystanders_seen(bystanders: list[str], untouched: list[str]) -> str:
    affected = [name for name in bystanders if name not in untouched]
    text = f"{len(untouched)} of {len(bystanders)} unaffected"
    text += f" (affected: {', '.join(affected)})" if affected else ""
    return text + " (run succeeded, rows equal a clean run's, connection still active)"


def report(row: dict[str, str]) -> None:
    path = os.environ.get(REPORT_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(row) + "\n")


# --- the tests ----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", [case.param() for case in FAULT_MATRIX])
def test_a_fault_hits_only_its_connection_with_the_documented_outcome(world, clean, case):
    case.arrange(world)
    results = world.sync_all()
    victim, stored = results[VICTIM], world.stored(VICTIM)
    rows = rows_of(stored, clean[VICTIM])
    bystanders = [name for name in SYNC_ORDER if name != VICTIM]
    untouched = [
        name
        for name in bystanders
        if results[name].success
        and world.stored(name) == clean[name]
        and world.harness.store.get(name).status == ACTIVE
    ]
    report(
        {
            "fault": case.fault,
            "where": case.where,
            "expected": case.expected(),
            "observed": observed(case, victim, rows),
            "bystanders": bystanders_seen(bystanders, untouched),
        }
    )

    assert world.sim.pending_faults() == {}, "every injected fault met the victim"
    assert untouched == bystanders, "a bystander was affected"
    assert rows == case.victim_rows, "the victim's tables are complete or untouched"
    if case.outcome == "failed":
        assert not victim.success
        found = failure(victim, case.asset)
        assert found is not None, f"{case.asset} did not fail"
        message, meta = found
        assert meta["connection"] == VICTIM and meta["what_to_do"]
        assert case.says in message
        assert "what to do" in message or "tiktok-crm-sync connections" in message
        assert {key: meta.get(key) for key in case.facts} == dict(case.facts)
        if case.facts["error_kind"] == "needs_reconnect":
            assert world.harness.store.get(VICTIM).status == NEEDS_RECONNECT
        return
    assert victim.success, failure(victim, case.asset)
    meta = materialization(victim, case.asset)
    assert {key: meta.get(key) for key in case.facts} == dict(case.facts)
    if case.outcome == "skipped":
        assert case.says in meta["skipped_reason"]
    if case.outcome == "recovered":
        assert meta["videos_listed"] == world.sim.accounts[VICTIM_ACCOUNT].video_count


def test_the_documented_table_lists_every_case_with_its_expected_outcome():
    text = RELIABILITY_DOC.read_text(encoding="utf-8")
    for case in FAULT_MATRIX:
        assert f"| {case.fault} | {case.where} | {case.expected()} |" in text, case.fault


def test_an_aimed_fault_meets_only_its_account_after_the_requests_it_lets_through(simulator):
    """The simulator lever the matrix stands on, over plain HTTP."""
    with httpx.Client(base_url=simulator.base_url, timeout=5.0) as http:
        api = SimulatorCalls(simulator, http, simulator.clock)
        mine, other = api.access_token(VICTIM_ACCOUNT), api.access_token(0)
        simulator.inject("user_info", "server_error", account=VICTIM_ACCOUNT, after=1)
        assert simulator.pending_faults() == {f"user_info@{VICTIM_ACCOUNT}": ["server_error"]}
        calls = [mine, other, other, mine, mine]
        statuses = [api.user_info(token, "open_id").status_code for token in calls]
    assert statuses == [200, 200, 200, 500, 200]
    assert simulator.pending_faults() == {}
    with pytest.raises(ValueError, match="Display endpoints"):
        simulator.inject("oauth_token", "server_error", account=VICTIM_ACCOUNT)
