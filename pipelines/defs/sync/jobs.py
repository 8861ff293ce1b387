"""The daily sync: every TikTok and CRM asset of a batch of connections, in one run.

The job runs in process: it has one step (`connection_sync`), so a step subprocess would only add
a Python start-up and a code load to every run (docs/operations.md has the measurements).
"""

import dagster as dg

DAILY_SYNC_JOB = "tiktok_daily_sync"

tiktok_daily_sync = dg.define_asset_job(
    name=DAILY_SYNC_JOB,
    selection=dg.AssetSelection.groups("tiktok", "crm", "crm_push"),
    executor_def=dg.in_process_executor,
    description="Extract a batch of connections' profiles and videos and load their CRM records.",
)
