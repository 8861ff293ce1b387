"""Batches of records, and finding the records at fault when a CRM refuses a whole request.

HubSpot answers 400 for a batch with one bad value and Salesforce answers 300 when one external
id matches several records: nothing in the batch is written and the answer does not always say
which record is to blame. The batch is then split in halves until the refused records stand
alone, so one bad record does not hold back the others. Splitting costs calls, so a push has a
budget of extra calls for it; once spent, a refused batch is rejected whole with the CRM's reason
(a refusal that hits every record, such as a missing property, spends it on the first batch).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from resources.crm.errors import RequestRejected
from resources.crm.models import VALIDATION, BatchResult, Record

ISOLATION_CALL_BUDGET = 64  # about 4 bad records in batches of 100 (2 * log2(100) calls each)

SendBatch = Callable[[list[Record]], BatchResult]


class BatchSender:
    """Sends `batch_size` records per request through `send`, isolating refused records."""

    def __init__(
        self,
        send: SendBatch,
        key: str,
        batch_size: int,
        isolation_budget: int = ISOLATION_CALL_BUDGET,
    ) -> None:
        self._send = send
        self._key = key
        self._batch_size = batch_size
        self.isolation_calls_left = isolation_budget

    def batches(self, records: Sequence[Record]) -> Iterator[BatchResult]:
        """One result per batch of `batch_size`, in order, so callers can save progress."""
        for start in range(0, len(records), self._batch_size):
            yield self.send(list(records[start : start + self._batch_size]))

    def send(self, batch: list[Record]) -> BatchResult:
        try:
            return self._send(batch)
        except RequestRejected as err:
            return self._isolate(batch, err)

    def _isolate(self, batch: list[Record], err: RequestRejected) -> BatchResult:
        if len(batch) == 1 or self.isolation_calls_left < 2:
            keys = [str(record[self._key]) for record in batch]
            reason = f"the request was refused ({err.status}): {err.message}"
            if len(batch) > 1:
                reason += f" (refused as a batch of {len(batch)}; not split further)"
            return BatchResult.all_rejected(keys, reason, VALIDATION)
        self.isolation_calls_left -= 2
        middle = len(batch) // 2
        result = BatchResult()
        for half in (batch[:middle], batch[middle:]):
            result += self.send(half)
        return result
