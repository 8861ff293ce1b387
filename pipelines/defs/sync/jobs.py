"""The daily sync: every TikTok and CRM asset of a batch of connections, in one run.

The job has one step (`connection_sync`), run in process by default: a step subprocess would add a
Python start-up and a code load to every run and buy nothing (docs/operations.md has the
measurements). SYNC_EXECUTOR=multiprocess restores Dagster's multiprocess executor, and
SYNC_EXECUTOR=default leaves the choice to the code location (the Celery one, deploy/celery).
"""

import os

import dagster as dg

from pipelines.defs.sync.assets import SYNC_GROUP

DAILY_SYNC_JOB = "tiktok_daily_sync"
EXECUTORS = {
    "in_process": dg.in_process_executor,
    "multiprocess": dg.multiprocess_executor,
    "default": None,  # the Definitions' executor
}


def sync_executor() -> dg.ExecutorDefinition | None:
    name = (os.environ.get("SYNC_EXECUTOR") or "in_process").strip()
    if name not in EXECUTORS:
        raise ValueError(
            f"SYNC_EXECUTOR must be one of {', '.join(EXECUTORS)} (default in_process), "
            f"not {name!r}"
        )
    return EXECUTORS[name]


tiktok_daily_sync = dg.define_asset_job(
    name=DAILY_SYNC_JOB,
    selection=dg.AssetSelection.groups(SYNC_GROUP),
    executor_def=sync_executor(),
    description="Extract a batch of connections' profiles and videos and load their CRM records.",
)
