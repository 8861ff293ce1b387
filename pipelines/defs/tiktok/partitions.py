"""One partition per connection; the key is the connection's name, stable for its lifetime."""

import dagster as dg

CONNECTION_PARTITIONS_NAME = "tiktok_connection"

connection_partitions = dg.DynamicPartitionsDefinition(name=CONNECTION_PARTITIONS_NAME)
