"""Warehouse load: our PostgreSQL upsert against a raw COPY and pandas.DataFrame.to_sql.

    python -m bench.load [--rows 100000] [--repeats 3] [--url postgresql+psycopg://...]

Two row sets, built by the pipeline's own row builders (`tables.video_row`,
`tables.video_metrics_row`) from videos rendered by the TikTok simulator's generator: 19-digit
string ids, captions in several scripts with emoji, signed URLs, embed HTML.

- videos: `tiktok_videos` rows (19 columns, about 1.2 KB each): the headline figures;
- metrics: `tiktok_video_metrics_daily` rows (7 columns), the table that grows every day.

Each is loaded three ways, each into an empty table, in one run:

- loader: `Warehouse.upsert` into the table `ensure_table` made (with its primary key), one
  transaction; then the same rows again, every row an update (a rerun of the day);
- copy: psycopg 3 binary `COPY ... FROM STDIN` of the same dicts into an empty table of the same
  definition (primary key included), one transaction: the floor for any loader;
- to_sql: `DataFrame.to_sql(name, engine, if_exists="append", index=False)`, i.e. the defaults
  `method=None` and `chunksize=None`, into a table pandas creates itself (no primary key, which
  only helps it); the DataFrame is built before the clock starts.

Methods run interleaved, `--repeats` times; the median counts. Everything happens in a schema of
its own, dropped at the end. The last line is JSON: `rows_per_s`, `vs_copy`, `vs_to_sql` are the
video figures, `metrics_*` the same for the metrics rows.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from operator import itemgetter

import pandas as pd
import sqlalchemy as sa

from resources.database import make_engine
from resources.tiktok.models import TikTokVideo
from resources.warehouse import tiktok_tables as tables
from resources.warehouse.store import Warehouse
from simulators.tiktok.config import DEMO_CLIENT_KEY, SimulatorConfig
from simulators.tiktok.data import Catalog
from simulators.tiktok.render import video_object

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
GOALS = {"vs_copy": 0.5, "vs_to_sql": 5.0}
TO_SQL_CALL = (
    'DataFrame.to_sql(name, engine, if_exists="append", index=False) '
    "(defaults: method=None, chunksize=None)"
)
NOW = 1_767_268_800.0  # the simulator's data anchor, so the rows are the same on every run
DAY = datetime.fromtimestamp(NOW, UTC).date()


@dataclass(frozen=True)
class Dataset:
    """Rows of one pipeline table, with the table's columns and natural key."""

    name: str
    columns: list[tuple[str, str]]
    key: tuple[str, ...]
    rows: list[dict]


def datasets(count: int) -> list[Dataset]:
    """tiktok_videos rows (wide: ~1.2 KB) and tiktok_video_metrics_daily rows (narrow)."""
    catalog = Catalog(SimulatorConfig(accounts=1, video_count_overrides={0: count}))
    account = catalog.accounts[0]
    videos = [
        TikTokVideo(**video_object(catalog, account, i, NOW, DEMO_CLIENT_KEY)) for i in range(count)
    ]
    return [
        Dataset(
            "videos",
            tables.VIDEO_COLUMNS,
            tables.VIDEO_KEY,
            [tables.video_row("creator-01", account.open_id, video) for video in videos],
        ),
        Dataset(
            "metrics",
            tables.VIDEO_METRICS_COLUMNS,
            tables.VIDEO_METRICS_KEY,
            [tables.video_metrics_row("creator-01", video, DAY) for video in videos],
        ),
    ]


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


class Bench:
    """One schema of its own on the server; each method loads `data` into an empty table."""

    def __init__(self, url: str) -> None:
        self.schema = f"bench_load_{uuid.uuid4().hex[:8]}"
        self.admin = sa.create_engine(url)
        with self.admin.begin() as db:
            db.execute(sa.text(f'CREATE SCHEMA "{self.schema}"'))
        self.engine = make_engine(f"{url}?options=-csearch_path%3D{self.schema}")
        self.warehouse = Warehouse(self.engine)

    def fresh_table(self, name: str, data: Dataset) -> sa.Table:
        with self.engine.begin() as db:
            db.execute(sa.text(f'DROP TABLE IF EXISTS "{name}"'))
        return self.warehouse.ensure_table(name, data.columns, data.key)

    def loader(self, table: sa.Table, data: Dataset, load_id: str) -> None:
        with self.warehouse.transaction() as db:
            self.warehouse.upsert(db, table, data.rows, data.key, load_id)

    def raw_copy(self, name: str, data: Dataset) -> None:
        columns = [column for column, _kind in data.columns]
        names = ", ".join(f'"{c}"' for c in [*columns, "_synced_at", "_load_id"])
        get, extra = itemgetter(*columns), (datetime.now(UTC), "bench-copy")
        with self.engine.begin() as db, db.connection.driver_connection.cursor() as cur:
            cur.execute(f'SELECT {names} FROM "{name}" LIMIT 0')
            oids = [column.type_code for column in cur.description]
            with cur.copy(f'COPY "{name}" ({names}) FROM STDIN (FORMAT BINARY)') as copy:
                copy.set_types(oids)
                for row in data.rows:
                    copy.write_row(get(row) + extra)

    def to_sql(self, name: str, frame: pd.DataFrame) -> None:
        with self.engine.begin() as db:
            db.execute(sa.text(f'DROP TABLE IF EXISTS "{name}"'))
        frame.to_sql(name, self.engine, if_exists="append", index=False)

    def count(self, name: str) -> int:
        with self.engine.connect() as db:
            return int(db.execute(sa.text(f'SELECT count(*) FROM "{name}"')).scalar_one())

    def drop(self) -> None:
        self.engine.dispose()
        with self.admin.begin() as db:
            db.execute(sa.text(f'DROP SCHEMA "{self.schema}" CASCADE'))
        self.admin.dispose()


def measure(bench: Bench, data: Dataset, repeats: int) -> dict[str, float]:
    """rows/s per method (median of `repeats`, methods interleaved so noise hits all alike)."""
    frame = pd.DataFrame(data.rows)
    seconds: dict[str, list[float]] = {"loader": [], "rerun": [], "copy": [], "to_sql": []}
    names = {method: f"{data.name}_{method}" for method in ("loader", "copy", "to_sql")}
    for repeat in range(1, repeats + 1):
        bench.fresh_table(names["copy"], data)
        seconds["copy"].append(timed(lambda: bench.raw_copy(names["copy"], data)))
        table = bench.fresh_table(names["loader"], data)
        first, again = f"bench-{repeat}", f"bench-{repeat}-again"
        seconds["loader"].append(timed(partial(bench.loader, table, data, first)))
        seconds["rerun"].append(timed(partial(bench.loader, table, data, again)))
        seconds["to_sql"].append(timed(lambda: bench.to_sql(names["to_sql"], frame)))
        print(
            f"{data.name} repeat {repeat}: "
            + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in seconds.items())
        )
    counts = {name: bench.count(name) for name in names.values()}
    if set(counts.values()) != {len(data.rows)}:
        raise RuntimeError(f"row counts differ: {counts}")
    return {method: len(data.rows) / statistics.median(times) for method, times in seconds.items()}


def figures(prefix: str, rate: dict[str, float]) -> dict[str, float]:
    return {
        f"{prefix}rows_per_s": round(rate["loader"]),
        f"{prefix}rerun_rows_per_s": round(rate["rerun"]),
        f"{prefix}copy_rows_per_s": round(rate["copy"]),
        f"{prefix}to_sql_rows_per_s": round(rate["to_sql"]),
        f"{prefix}vs_copy": round(rate["loader"] / rate["copy"], 3),
        f"{prefix}rerun_vs_copy": round(rate["rerun"] / rate["copy"], 3),
        f"{prefix}vs_to_sql": round(rate["loader"] / rate["to_sql"], 2),
    }


def machine() -> dict[str, object]:
    with open("/proc/cpuinfo") as cpuinfo:
        models = [line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line]
    return {
        "nproc": os.cpu_count(),
        "cpu": models[0] if models else platform.processor(),
        "python": platform.python_version(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--url", default=DEFAULT_URL, help="PostgreSQL (psycopg 3) URL")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(f"building {args.rows:,} video rows and their daily metrics rows ...", flush=True)
    videos, metrics = datasets(args.rows)
    bench = Bench(args.url)
    try:
        with bench.engine.connect() as db:
            method = bench.warehouse.upsert_method(db)
        rates = {data.name: measure(bench, data, args.repeats) for data in (videos, metrics)}
    finally:
        bench.drop()
    for name, rate in rates.items():
        for way, value in rate.items():
            print(f"{name:>8} {way:>7}: {value:>10,.0f} rows/s (median of {args.repeats})")
    print(f"to_sql was called as {TO_SQL_CALL}")
    result: dict[str, object] = {"benchmark": "load", "rows": args.rows, "repeats": args.repeats}
    result |= {"method": method, **figures("", rates["videos"])}
    result |= figures("metrics_", rates["metrics"])
    result |= {"to_sql_call": TO_SQL_CALL, "goals": GOALS}
    result["goals_met"] = all(result[name] >= goal for name, goal in GOALS.items())
    print(json.dumps(result))


if __name__ == "__main__":
    main()
