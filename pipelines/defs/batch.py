"""Runs over several connections: each connection succeeds or fails on its own.

A daily run covers one connection. A backfill covers up to BACKFILL_BATCH_SIZE connections per
run (`connection_backfill_policy`), so 1,000 connections are 20 runs, not 1,000 processes. In such
a run every asset works through its connections one by one. A connection that fails is logged
and left out; the others are materialized, each with its own metadata; then the step fails naming
the failed connections. Dagster marks a partition failed when its run failed without
materializing it, so "Failed partitions only" re-runs the failed connections' TikTok assets and,
because a failed step skips what is downstream of it, the batch's CRM assets (a cheap rerun: the
warehouse upsert and the diff-based push are idempotent).

Asset checks of a batched run give one result for all of its connections, naming those that fail.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import dagster as dg

Metadata = Mapping[str, Any]
# What one connection's push step yields; see `pipelines.defs.crm.push`.
AssetEvent = dg.MaterializeResult | dg.AssetObservation | dg.AssetCheckResult


def describe(error: Exception) -> str:
    if isinstance(error, dg.Failure) and error.description:
        return error.description
    return f"{type(error).__name__}: {error}"


def batch_failure(total: int, failed: Mapping[str, Exception]) -> dg.Failure:
    lines = "\n".join(f"| {name} | {describe(error)} |" for name, error in failed.items())
    return dg.Failure(
        description=f"{len(failed)} of {total} connections failed: "
        + "; ".join(f"{name}: {describe(error)}" for name, error in failed.items()),
        metadata={
            "failed_connections": ", ".join(failed),
            "connections_failed": len(failed),
            "connections_in_run": total,
            "failures": dg.MetadataValue.md(f"| connection | failure |\n|---|---|\n{lines}"),
        },
        # Run retries re-run the whole batch; a failure a retry can fix is retried per request.
        allow_retries=False,
    )


def _attempt(
    context: dg.AssetExecutionContext, keys: list[str], work: Callable[[str], Any]
) -> tuple[dict[str, Any], dict[str, Exception]]:
    done, failed = {}, {}
    for key in keys:
        try:
            done[key] = work(key)
        except Exception as error:  # one connection's failure must not stop the others
            failed[key] = error
            context.log.error("connection %r failed: %s", key, describe(error))
    return done, failed


def _fail_after_materializing(
    context: dg.AssetExecutionContext,
    keys: list[str],
    done: Mapping[str, Metadata],
    failed: Mapping[str, Exception],
) -> dg.Failure:
    """Record the connections that succeeded, one materialization each; the failure to raise."""
    for key, metadata in done.items():
        context.log_event(
            dg.AssetMaterialization(asset_key=context.asset_key, partition=key, metadata=metadata)
        )
    return batch_failure(len(keys), failed)


def materialize_each(
    context: dg.AssetExecutionContext, sync_one: Callable[[str], Metadata]
) -> dg.MaterializeResult:
    """`sync_one(connection)` for every partition of the run; its result is that one's metadata."""
    keys = list(context.partition_keys)
    if len(keys) == 1:
        return dg.MaterializeResult(metadata=sync_one(keys[0]))
    done, failed = _attempt(context, keys, sync_one)
    if failed:
        raise _fail_after_materializing(context, keys, done, failed)
    for key, metadata in done.items():
        context.add_asset_metadata(metadata, partition_key=key)
    return dg.MaterializeResult()


def events_each(
    context: dg.AssetExecutionContext, events_one: Callable[[str], Iterator[AssetEvent]]
) -> Iterator[AssetEvent]:
    """`materialize_each` for an asset that yields events: materializations, observations and
    its own check results (merged into one result per check over the run's connections)."""
    keys = list(context.partition_keys)
    if len(keys) == 1:
        yield from events_one(keys[0])
        return
    done, failed = _attempt(context, keys, lambda key: list(events_one(key)))
    materialized: dict[str, Metadata] = {}
    checks: dict[str, dict[str, dg.AssetCheckResult]] = {}
    for key, events in done.items():
        for event in events:
            if isinstance(event, dg.MaterializeResult):
                materialized[key] = event.metadata or {}
                for result in event.check_results or ():
                    checks.setdefault(result.check_name or "", {})[key] = result
            elif isinstance(event, dg.AssetCheckResult):
                checks.setdefault(event.check_name or "", {})[key] = event
            else:
                context.log_event(event._replace(partition=key))
    if failed:
        raise _fail_after_materializing(context, keys, materialized, failed)
    merged = [merge_check_results(by_key) for by_key in checks.values()]
    if not materialized:  # a dry run observes and materializes nothing
        yield from merged
        return
    for key, metadata in materialized.items():
        context.add_asset_metadata(metadata, partition_key=key)
    yield dg.MaterializeResult(check_results=merged)


def merge_check_results(by_key: Mapping[str, dg.AssetCheckResult]) -> dg.AssetCheckResult:
    """One check result for several connections: it passes when every connection passes."""
    failing = {key: result for key, result in by_key.items() if not result.passed}
    first = next(iter(by_key.values()))
    warn_only = failing and all(
        result.severity == dg.AssetCheckSeverity.WARN for result in failing.values()
    )
    return dg.AssetCheckResult(
        asset_key=first.asset_key,
        check_name=first.check_name,
        passed=not failing,
        severity=dg.AssetCheckSeverity.WARN if warn_only else dg.AssetCheckSeverity.ERROR,
        metadata={
            "connections_checked": len(by_key),
            "connections_failing": ", ".join(failing) or "none",
        },
        description="; ".join(
            f"{key}: {result.description or 'failed'}" for key, result in failing.items()
        )
        or None,
    )


def check_each(
    context: dg.AssetCheckExecutionContext, check_one: Callable[[str], dg.AssetCheckResult]
) -> dg.AssetCheckResult:
    """`check_one(connection)` for every partition of the run, as one result."""
    keys = list(context.op_execution_context.partition_keys)
    if len(keys) == 1:
        return check_one(keys[0])
    return merge_check_results({key: check_one(key) for key in keys})
