"""Content hashes and push plans: pure functions, no I/O."""

from datetime import UTC, datetime

import pytest

from resources.crm.diff import content_hash, plan_push

RECORD = {"id": "a", "followers": "10", "synced": "2026-01-01T00:00:00Z"}


@pytest.mark.parametrize(
    ("left", "right", "same"),
    [
        (RECORD, dict(reversed(list(RECORD.items()))), True),  # key order does not matter
        (RECORD, RECORD | {"synced": "2026-01-02T00:00:00Z"}, True),  # volatile field ignored
        (RECORD, RECORD | {"followers": "11"}, False),  # content changed
        (RECORD, RECORD | {"followers": 10}, False),  # "10" and 10 are different values
        (RECORD, RECORD | {"bio": None}, False),  # a new field, even empty, is a change
    ],
)
def test_content_hash(left, right, same):
    assert (content_hash(left, {"synced"}) == content_hash(right, {"synced"})) is same


def test_datetimes_hash_by_their_iso_text():
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    assert content_hash({"at": moment}) == content_hash({"at": moment.isoformat()})


def test_plan_splits_creates_updates_unchanged_and_held():
    records = [{"id": k, "v": "1"} for k in ("new", "same", "changed", "held", "held-changed")]
    digest = {r["id"]: content_hash(r) for r in records}
    pushed = {"same": digest["same"], "changed": "old"}
    held = {"held": digest["held"], "held-changed": "old"}
    plan = plan_push(records, "id", pushed, held)
    assert [r["id"] for r in plan.creates] == ["new", "held-changed"]
    assert [r["id"] for r in plan.updates] == ["changed"]
    assert (plan.unchanged, plan.held) == (1, 1)
    assert plan.hashes == digest


def test_force_sends_everything():
    records = [{"id": "a"}, {"id": "b"}]
    pushed = {"a": content_hash(records[0])}
    held = {"b": content_hash(records[1])}
    plan = plan_push(records, "id", pushed, held, force=True)
    assert [r["id"] for r in plan.to_send] == ["b", "a"]
    assert (plan.unchanged, plan.held) == (0, 0)
