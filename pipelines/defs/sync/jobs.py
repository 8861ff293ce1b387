"""The daily sync: every TikTok and CRM asset of one connection, in one run per connection."""

import dagster as dg

from pipelines.defs.tiktok.partitions import connection_partitions

DAILY_SYNC_JOB = "tiktok_daily_sync"

tiktok_daily_sync = dg.define_asset_job(
    name=DAILY_SYNC_JOB,
    selection=dg.AssetSelection.groups("tiktok", "crm", "crm_push"),
    partitions_def=connection_partitions,
    description="Extract one connection's profile and videos and load its CRM records.",
)
