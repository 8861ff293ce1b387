"""The reject-rate check of every CRM push asset.

The rate is the share of a connection's records that are not in the CRM after the run: refused
by the mapping, refused by the CRM this run, or held back as refused before. The check fails
above CRM_MAX_REJECT_RATE (a fraction, default 0.05), read when the push runs. Its result is
emitted by the push asset itself, so it always describes that very run.
"""

from __future__ import annotations

import dagster as dg

# The setting lives with the push itself (services.crm_push), read when the push runs.
from services.crm_push import MAX_REJECT_RATE_VARIABLE

REJECT_RATE_CHECK = "reject_rate_below_threshold"


def reject_rate_spec(asset_name: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        REJECT_RATE_CHECK,
        asset=asset_name,
        description="Fails when the share of this connection's records not accepted by the CRM "
        f"(mapping and CRM rejections) is above {MAX_REJECT_RATE_VARIABLE} (default 5%).",
    )


def reject_rate_result(
    asset_name: str, rejected: int, total: int, threshold: float, partition: str | None = None
) -> dg.AssetCheckEvaluation:
    """The check's evaluation for one connection's push (its partition)."""
    rate = rejected / total if total else 0.0
    return dg.AssetCheckEvaluation(
        asset_key=dg.AssetKey(asset_name),
        check_name=REJECT_RATE_CHECK,
        passed=rate <= threshold,
        metadata={
            "reject_rate": round(rate, 6),
            "threshold": threshold,
            "rejected": rejected,
            "records": total,
        },
        description=(
            f"{rejected} of {total} records rejected ({rate:.1%}); the limit is {threshold:.1%}. "
            "The crm_rejections table in the state database holds each reason."
        ),
        partition=partition,
    )
