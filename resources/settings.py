"""Non-secret configuration read from the environment, with the embedded defaults.

Secrets (client secrets, CRM tokens) are never read here: they are resolved at run time by the code
that needs them, so a missing secret fails that run with the variable's name.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

MODE_DEMO = "demo"
MODE_LIVE = "live"


def data_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """Where the embedded SQLite databases live: TIKTOK_CRM_SYNC_HOME, else ./.data."""
    return Path(environ.get("TIKTOK_CRM_SYNC_HOME") or Path.cwd() / ".data").resolve()


def _sqlite_url(name: str, environ: Mapping[str, str]) -> str:
    path = data_dir(environ) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def warehouse_url(environ: Mapping[str, str] = os.environ) -> str:
    return environ.get("WAREHOUSE_URL") or _sqlite_url("warehouse.db", environ)


def state_database_url(environ: Mapping[str, str] = os.environ) -> str:
    return environ.get("STATE_DATABASE_URL") or _sqlite_url("state.db", environ)


def mode(environ: Mapping[str, str] = os.environ) -> str:
    value = (environ.get("TIKTOK_CRM_SYNC_MODE") or MODE_LIVE).strip().lower()
    if value not in (MODE_DEMO, MODE_LIVE):
        raise ValueError(f"TIKTOK_CRM_SYNC_MODE must be 'demo' or 'live', not {value!r}")
    return value


def mappings_dir(environ: Mapping[str, str] = os.environ) -> Path:
    default = Path(__file__).resolve().parents[1] / "pipelines" / "mappings"
    return Path(environ.get("MAPPINGS_DIR") or default)


BACKFILL_BATCH_VARIABLE = "BACKFILL_BATCH_SIZE"
DEFAULT_BACKFILL_BATCH_SIZE = 50


def backfill_batch_size(environ: Mapping[str, str] = os.environ) -> int:
    """How many connections one backfill run covers (read when the code location loads)."""
    raw = (environ.get(BACKFILL_BATCH_VARIABLE) or "").strip()
    if not raw:
        return DEFAULT_BACKFILL_BATCH_SIZE
    if not raw.isdigit() or not 1 <= int(raw) <= 10_000:
        raise ValueError(
            f"{BACKFILL_BATCH_VARIABLE} must be a whole number of connections per backfill run "
            f"from 1 to 10000 (default {DEFAULT_BACKFILL_BATCH_SIZE}), not {raw!r}"
        )
    return int(raw)
