"""How a run over many connections reports to Dagster: one event per connection and asset.

A run covers many connections (a batch of the daily schedule, of a backfill or of `sync`). For
each connection that succeeded, every asset it synced is recorded as materialized for that
connection's partition, with its own metadata, and every check as evaluated for that partition.
When some connections failed, the step then fails naming them: Dagster marks exactly the failed
connections' partitions failed (planned in a failed run, never materialized), so "Failed
partitions only" re-runs just those, and the run-failure alert names them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg

from pipelines.defs.crm.checks import reject_rate_result
from pipelines.defs.crm.push_results import (
    crm_failures,
    dry_run_metadata,
    push_metadata,
    stopped_failure,
)
from pipelines.defs.tiktok.failures import about, failure_for
from resources.crm.errors import CrmError
from resources.tiktok.call_stats import CallStats
from services.crm_push import PushStopped, RejectRateSettingError
from services.outcome import (
    CheckOutcome,
    ConnectionOutcome,
    Json,
    Markdown,
    Metadata,
    PushOutcome,
    StepFailure,
    Timestamp,
)

# The keys of a TikTok client's call counters (`CallStats.as_metadata`, their one home). Nearly
# always zero, they are shown as one table: as numbers Dagster would draw a flat plot of each.
CALL_COUNTERS = frozenset(CallStats().as_metadata())
CALLS_KEY = "api_call_stats"


def describe(error: BaseException) -> str:
    if isinstance(error, dg.Failure) and error.description:
        return error.description
    return f"{type(error).__name__}: {error}"


def batch_failure(total: int, failed: Mapping[str, BaseException]) -> dg.Failure:
    """The step's failure: one sentence per failed connection (each names its connection)."""
    sentences = {name: describe(error) for name, error in failed.items()}
    lines = "\n".join(f"| {name} | {sentence} |" for name, sentence in sentences.items())
    header = f"{len(failed)} of {total} connections failed"
    if len(failed) == 1:
        description = f"{header}: {next(iter(sentences.values()))}"
    else:
        description = f"{header}:\n" + "\n".join(f"- {s}" for s in sentences.values())
    failure = dg.Failure(
        description=description,
        metadata={
            "failed_connections": ", ".join(failed),
            # Failed for a reason a later try may not meet (a blip): the catch-up pass's list.
            "retryable_connections": ", ".join(
                name for name, e in failed.items() if isinstance(e, dg.Failure) and e.allow_retries
            ),
            "connections_failed": len(failed),
            "connections_in_run": total,
            "failures": dg.MetadataValue.md(f"| connection | failure |\n|---|---|\n{lines}"),
            # What the run-failure alert says: one sentence per connection.
            "failure_sentences": dg.MetadataValue.json(sentences),
        },
        # Run retries re-run the whole batch; a failure a retry can fix is retried per request.
        allow_retries=False,
    )
    # An unexpected error keeps its trace in the run's logs (expected refusals carry none).
    failure.__cause__ = next((e.__cause__ for e in failed.values() if e.__cause__), None)
    return failure


def dagster_metadata(metadata: Metadata) -> dict[str, Any]:
    """Dagster metadata of a service's plain values: the call counters folded into one table
    (`api_call_stats`), the marked values shown as markdown, JSON or a timestamp."""
    converted: dict[str, Any] = {}
    calls = {key: value for key, value in metadata.items() if key in CALL_COUNTERS}
    for key, value in metadata.items():
        if key in calls:
            continue
        if isinstance(value, Timestamp):
            value = dg.MetadataValue.timestamp(value.epoch_s)
        elif isinstance(value, Markdown):
            value = dg.MetadataValue.md(value.text)
        elif isinstance(value, Json):
            value = dg.MetadataValue.json(value.value)
        elif value is None:
            value = "none"
        converted[key] = value
    if calls:
        converted[CALLS_KEY] = dg.MetadataValue.json(calls)
    return converted


def connection_failure(outcome: ConnectionOutcome) -> dg.Failure:
    """The failure of one connection, with the error class and what to do in its metadata.

    A connection can fail in several places at once (two CRM pushes): one failure names them all,
    each distinct sentence once, with the first one's metadata.
    """
    failures = [_step_failure(outcome, failure) for failure in outcome.failures]
    if len(failures) == 1:
        return failures[0]
    first = failures[0]
    merged = dg.Failure(
        description="; ".join(dict.fromkeys(f.description or "failed" for f in failures)),
        metadata={**first.metadata, "failures_of_connection": len(failures)},
        allow_retries=all(f.allow_retries for f in failures),
    )
    merged.__cause__ = next((f.__cause__ for f in failures if f.__cause__), None)
    return merged


def _step_failure(outcome: ConnectionOutcome, failure: StepFailure) -> dg.Failure:
    err, name = failure.error, outcome.name
    if isinstance(err, PushStopped):
        push = err.outcome
        assert push.report is not None and push.stats is not None
        metadata = push_metadata(
            name, push.mapping, push.report, push.stats, push.refused, push.forced
        )
        return stopped_failure(name, push.mapping, push.report, metadata)
    if isinstance(err, CrmError | RejectRateSettingError) and failure.mapping is not None:
        try:
            with crm_failures(name, failure.mapping):
                raise err
        except dg.Failure as converted:
            return converted
    known = failure_for(name, err, outcome.calls.get(failure.at or "", {}))
    if known is not None:
        return known
    unexpected = dg.Failure(  # an error no class above knows: its type, message and trace
        description=about(name, describe(err)),
        metadata={"connection": name, "failed_at": failure.at or "setup"},
        allow_retries=False,
    )
    unexpected.__cause__ = err
    return unexpected


def check_evaluation(
    asset_key: dg.AssetKey, check: CheckOutcome, partition: str
) -> dg.AssetCheckEvaluation:
    return dg.AssetCheckEvaluation(
        asset_key=asset_key,
        check_name=check.name,
        passed=check.passed,
        metadata=dagster_metadata(check.metadata),
        severity=dg.AssetCheckSeverity.WARN if check.warn_only else dg.AssetCheckSeverity.ERROR,
        description=check.description,
        partition=partition,
    )


def reject_rate_evaluation(
    asset_key: dg.AssetKey, push: PushOutcome, partition: str
) -> dg.AssetCheckEvaluation:
    return reject_rate_result(
        asset_key.to_user_string(), push.rejected, push.total, push.threshold, partition
    )


def push_event(
    asset_key: dg.AssetKey, push: PushOutcome, partition: str
) -> dg.AssetMaterialization | dg.AssetObservation:
    name, mapping = partition, push.mapping
    if push.report is None:
        metadata = dry_run_metadata(name, mapping, push.plan, push.refused)
        return dg.AssetObservation(asset_key=asset_key, partition=partition, metadata=metadata)
    assert push.stats is not None
    metadata = push_metadata(name, mapping, push.report, push.stats, push.refused, push.forced)
    return dg.AssetMaterialization(asset_key=asset_key, partition=partition, metadata=metadata)
