"""Benchmark: diff-based HubSpot pushes of N contacts against the fake HubSpot.

    python -m bench.crm [--records 10000] [--changed-share 0.01]

Workload: N synthetic TikTok profiles are mapped by the shipped hubspot_contacts.yaml (all scopes
granted) and pushed through the real HubSpotClient, push planner and push state (temporary SQLite
state database) to the fake HubSpot on 127.0.0.1, with the fake's default rate window (190 per
10 s, so no 429 at this size). Then a later sync: every profile is reloaded (new load time) and
`--changed-share` of them have a new follower count; that is pushed again. A third push of the same
data measures the cost of a rerun.

Figures: API calls of each push (counted by the fake), wall seconds of each push (planning and
state writes included; mapping reported apart), records stored in the fake (no duplicates).
Goals: calls_first <= N/100 and calls_repush <= ceil(changed/100).
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from resources.crm.config import HubSpotSettings
from resources.crm.hubspot import HubSpotClient
from resources.crm.push import PushReport, plan_for, run_push
from resources.crm.state import PushStateStore, Target
from resources.database import make_engine
from resources.settings import mappings_dir
from services.crm_mapping import volatile_fields
from simulators.crm_fakes import FakeHubSpot
from transforms import Mapping, apply_mapping, load_mapping

SCOPES = frozenset({"user.info.basic", "user.info.profile", "user.info.stats", "video.list"})
FIRST_SYNC = datetime(2026, 1, 1, 6, tzinfo=UTC)


def profiles(count: int, synced_at: datetime, changed: set[int]) -> list[dict]:
    """Source records as the crm assets build them from tiktok_profiles rows."""
    return [
        {
            "open_id": f"-000{i:08d}bench{i:022d}",
            "union_id": f"u{i}",
            "display_name": f"Creator {i}",
            "username": f"creator_{i}",
            "bio_description": f"Bio of creator {i}",
            "is_verified": i % 7 == 0,
            "follower_count": 1000 + i + (500 if i in changed else 0),
            "following_count": 100 + i % 50,
            "likes_count": 20_000 + i,
            "video_count": 45,
            "connection_name": f"bench-{i % 100:03d}",
            "synced_at": synced_at,
        }
        for i in range(count)
    ]


def timed_push(
    client: HubSpotClient, store: PushStateStore, target: Target, mapping: Mapping, records: list
) -> tuple[PushReport, float]:
    key = mapping.key[0]
    volatile = volatile_fields(mapping)
    started = time.perf_counter()
    plan = plan_for(store, mapping.name, records, key, volatile=volatile)
    report = run_push(client, store, target, plan, key)
    return report, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--changed-share", type=float, default=0.01)
    args = parser.parse_args()
    count = args.records
    changed = set(range(0, count, max(1, round(1 / args.changed_share))))
    mapping = load_mapping(mappings_dir() / "hubspot_contacts.yaml")
    target = Target(mapping.name, "hubspot", mapping.target.object, "bench")

    started = time.perf_counter()
    first_records = apply_mapping(mapping, profiles(count, FIRST_SYNC, set()), SCOPES).records
    later_sync = FIRST_SYNC + timedelta(days=1)
    later_records = apply_mapping(mapping, profiles(count, later_sync, changed), SCOPES).records
    map_s = (time.perf_counter() - started) / 2
    assert len(first_records) == len(later_records) == count, "the mapping rejected records"

    fake = FakeHubSpot()
    with tempfile.TemporaryDirectory() as tmp, fake.running() as base_url:
        store = PushStateStore(make_engine(f"sqlite:///{Path(tmp) / 'state.db'}"))
        client = HubSpotClient(HubSpotSettings(base_url, fake.token), mapping.target.object)
        first, first_s = timed_push(client, store, target, mapping, first_records)
        calls_first = fake.request_count
        repush, repush_s = timed_push(client, store, target, mapping, later_records)
        calls_repush = fake.request_count - calls_first
        rerun, rerun_s = timed_push(client, store, target, mapping, later_records)
        calls_rerun = fake.request_count - calls_first - calls_repush
        stored = len(fake.records())
        # The re-push carried the new follower counts (the mapping makes them strings).
        sample = sorted(changed)[: min(len(changed), 5)]
        key = mapping.key[0]
        values_ok = all(
            fake.find(mapping.target.object, key, later_records[i][key])["tiktok_followers"]
            == later_records[i]["tiktok_followers"]
            for i in sample
        )
        client.close()

    goal_first, goal_repush = math.ceil(count / 100), math.ceil(len(changed) / 100)
    print(f"records: {count}, changed on the later sync: {len(changed)}")
    print(f"mapping: {map_s:.3f} s per {count} records")
    print(
        f"first push: {calls_first} calls, {first.created} created, {first_s:.3f} s "
        f"({count / first_s:,.0f} records/s)"
    )
    print(
        f"re-push ({args.changed_share:.0%} changed): {calls_repush} calls, {repush.updated} "
        f"updated, {repush.unchanged} unchanged, {repush_s:.3f} s"
    )
    print(f"rerun, nothing changed: {calls_rerun} calls, {rerun_s:.3f} s")
    print(f"records stored in the fake: {stored} (duplicates: {stored - count})")
    print(f"goals: calls_first <= {goal_first}, calls_repush <= {goal_repush}")
    result = {
        "benchmark": "crm",
        "records": count,
        "changed": len(changed),
        "calls_first": calls_first,
        "calls_repush": calls_repush,
        "calls_rerun": calls_rerun,
        "first_push_s": round(first_s, 3),
        "repush_s": round(repush_s, 3),
        "rerun_s": round(rerun_s, 3),
        "map_s": round(map_s, 3),
        "rejected": len(first.rejected) + len(repush.rejected) + len(rerun.rejected),
        "stored_records": stored,
        "repushed_values_ok": values_ok,
        "goal_calls_first": goal_first,
        "goal_calls_repush": goal_repush,
        "goals_met": calls_first <= goal_first and calls_repush <= goal_repush and values_ok,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
