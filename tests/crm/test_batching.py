"""BatchSender: batch sizes, and isolating the records at fault when a request is refused whole.

A fake `send` function plays a CRM that refuses any batch holding a "bad" record, so the number of
calls the isolation costs and its budget can be counted exactly.
"""

import pytest

from resources.crm.batching import BatchSender
from resources.crm.errors import RequestRejected
from resources.crm.models import VALIDATION, BatchResult


class Refusing:
    """Accepts batches without bad records; refuses whole any batch that holds one."""

    def __init__(self, bad: set[str], message: str = "Property values were not valid") -> None:
        self.bad = bad
        self.message = message
        self.calls: list[list[str]] = []

    def __call__(self, batch: list[dict]) -> BatchResult:
        keys = [record["id"] for record in batch]
        self.calls.append(keys)
        if self.bad & set(keys):
            raise RequestRejected(self.message, service="hubspot", status=400)
        return BatchResult(created=tuple(keys))


def records(count: int) -> list[dict]:
    return [{"id": f"r{i:03d}"} for i in range(count)]


def test_batches_hold_at_most_batch_size_records_in_order():
    send = Refusing(set())
    results = list(BatchSender(send, "id", 100).batches(records(250)))
    assert [len(call) for call in send.calls] == [100, 100, 50]
    assert [k for r in results for k in r.created] == [r["id"] for r in records(250)]


@pytest.mark.parametrize(
    ("bad", "calls"),
    [
        # The refused batch, then two calls per halving: 100 -> 50, 25, 12, 6, 3, 1.
        ({"r000"}, 1 + 2 * 6),
        # Both halves refused, then each alone: 6 halvings for r010 and 5 for r090 (25, 13, ...).
        ({"r010", "r090"}, 1 + 2 + 2 * 6 + 2 * 5),
    ],
)
def test_one_bad_record_costs_about_two_calls_per_halving(bad, calls):
    send = Refusing(bad)
    [result] = BatchSender(send, "id", 100).batches(records(100))
    assert sorted(r.key for r in result.rejected) == sorted(bad)
    assert all(r.error_class == VALIDATION for r in result.rejected)
    assert "Property values were not valid" in result.rejected[0].reason
    assert len(result.created) == 100 - len(bad)
    assert len(send.calls) == calls


def test_a_refusal_of_every_record_spends_the_budget_then_rejects_whole_batches():
    send = Refusing({r["id"] for r in records(300)}, "Property tiktok_bio does not exist")
    sender = BatchSender(send, "id", 100, isolation_budget=8)
    results = list(sender.batches(records(300)))
    assert sum(len(r.rejected) for r in results) == 300
    assert sum(len(r.created) for r in results) == 0
    assert len(send.calls) == 3 + 8  # one call per batch plus the budget
    assert "not split further" in results[-1].rejected[0].reason
