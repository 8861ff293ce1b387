"""One partition per connection; the key is the connection's name, stable for its lifetime.

A run covers a range of connection partitions: up to SYNC_BATCH_SIZE connections (default 500),
for the daily schedule, `tiktok-crm-sync sync` and backfills alike (`connection_backfill_policy`).
Inside the run every connection succeeds or fails on its own (`pipelines.defs.batch`).
"""

from collections.abc import Iterable, Sequence

import dagster as dg

from resources.settings import sync_batch_size

CONNECTION_PARTITIONS_NAME = "tiktok_connection"
# The tags of a run over a range of partitions, as Dagster's backfills write them (their constants
# are not in Dagster's public API).
ASSET_PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
ASSET_PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"

connection_partitions = dg.DynamicPartitionsDefinition(name=CONNECTION_PARTITIONS_NAME)

connection_backfill_policy = dg.BackfillPolicy.multi_run(max_partitions_per_run=sync_batch_size())


def partition_ranges(
    ordered: Sequence[str], wanted: Iterable[str], batch_size: int
) -> list[tuple[str, str]]:
    """(first, last) partition keys of runs that cover exactly the `wanted` connections.

    A run covers a contiguous range of the partitions (in their order in the instance), so the
    wanted ones are split where an unwanted one lies between them, and every `batch_size`.
    """
    chosen = set(wanted)
    ranges: list[tuple[str, str]] = []
    run: list[str] = []
    for key in [*ordered, None]:
        if key is not None and key in chosen and len(run) < batch_size:
            run.append(key)
            continue
        if run:
            ranges.append((run[0], run[-1]))
        run = [key] if key is not None and key in chosen else []
    return ranges
