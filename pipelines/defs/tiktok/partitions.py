"""One partition per connection; the key is the connection's name, stable for its lifetime.

Every partitioned asset shares `connection_backfill_policy`: a backfill runs up to
BACKFILL_BATCH_SIZE connections (default 50) per run, each connection on its own inside the run
(`pipelines.defs.batch`). The daily schedule still launches one run per connection.
"""

import dagster as dg

from resources.settings import backfill_batch_size

CONNECTION_PARTITIONS_NAME = "tiktok_connection"

connection_partitions = dg.DynamicPartitionsDefinition(name=CONNECTION_PARTITIONS_NAME)

connection_backfill_policy = dg.BackfillPolicy.multi_run(
    max_partitions_per_run=backfill_batch_size()
)
