"""The reject-rate check of every CRM push asset.

The rate is the share of a connection's records that are not in the CRM after the run: refused
by the mapping, refused by the CRM this run, or held back as refused before. The check fails
above CRM_MAX_REJECT_RATE (a fraction, default 0.05), read when the push runs. Its result is
emitted by the push asset itself, so it always describes that very run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import dagster as dg

REJECT_RATE_CHECK = "reject_rate_below_threshold"
MAX_REJECT_RATE_VARIABLE = "CRM_MAX_REJECT_RATE"
DEFAULT_MAX_REJECT_RATE = 0.05


class RejectRateSettingError(ValueError):
    pass


def max_reject_rate(environ: Mapping[str, str] = os.environ) -> float:
    raw = environ.get(MAX_REJECT_RATE_VARIABLE, "").strip()
    if not raw:
        return DEFAULT_MAX_REJECT_RATE
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise RejectRateSettingError(
            f"{MAX_REJECT_RATE_VARIABLE} must be a fraction from 0 to 1 (0.05 means 5%), "
            f"not {raw!r}"
        )
    return value


def reject_rate_spec(asset_name: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        REJECT_RATE_CHECK,
        asset=asset_name,
        description="Fails when the share of this connection's records not accepted by the CRM "
        f"(mapping and CRM rejections) is above {MAX_REJECT_RATE_VARIABLE} (default 5%).",
    )


def reject_rate_result(
    asset_name: str, rejected: int, total: int, threshold: float
) -> dg.AssetCheckResult:
    rate = rejected / total if total else 0.0
    return dg.AssetCheckResult(
        asset_key=asset_name,
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
    )
