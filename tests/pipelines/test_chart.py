"""`chart` without `--connection`: one small chart per creator, a note for those without stats,
written under the data folder (issue 20: one linear axis flattened every creator but the biggest,
a creator without stats vanished silently, and `followers.svg` landed in the repo root).

Round trip: rows in a real SQLite warehouse, the command through the CLI, the SVG read back.
"""

import os
import re
from datetime import date

import sqlalchemy as sa
from click.testing import CliRunner

from pipelines.cli import main
from resources import settings
from resources.warehouse import tiktok_tables as tables

DAYS = [date(2026, 12, day) for day in (1, 2, 3)]
# Three orders of magnitude apart: on one linear axis the small creator is a flat line.
FOLLOWERS = {"big": [3_000_000, 3_030_000, 3_060_000], "small": [1_000, 1_100, 1_210]}


def seed_warehouse(url: str) -> None:
    """The two tables `chart` reads, shaped like the sync's: `nostats` has a profile, no stats."""
    metadata = sa.MetaData()
    stats = sa.Table(
        tables.PROFILE_STATS_DAILY,
        metadata,
        sa.Column("connection_name", sa.String),
        sa.Column("snapshot_date", sa.Date),
        *(sa.Column(field, sa.Integer) for field in tables.STATS_FIELDS),
    )
    profiles = sa.Table(tables.PROFILES, metadata, sa.Column("connection_name", sa.String))
    engine = sa.create_engine(url)
    metadata.create_all(engine)
    with engine.begin() as db:
        db.execute(profiles.insert(), [{"connection_name": n} for n in (*FOLLOWERS, "nostats")])
        for name, values in FOLLOWERS.items():
            db.execute(
                stats.insert(),
                [
                    {"connection_name": name, "snapshot_date": day, "follower_count": value}
                    for day, value in zip(DAYS, values, strict=True)
                ],
            )
        db.execute(stats.insert(), [{"connection_name": "nostats", "snapshot_date": DAYS[0]}])
    engine.dispose()


def test_chart_draws_one_small_chart_per_creator_under_the_data_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where followers.svg used to land
    seed_warehouse(settings.warehouse_url())
    result = CliRunner().invoke(main, ["chart"])
    assert result.exit_code == 0, result.output
    out = settings.data_dir() / "charts" / "follower_count.svg"
    assert list(tmp_path.glob("*.svg")) == []
    svg = out.read_text()
    assert svg.count("<polyline") == 2  # one per creator with stats
    # Each on its own scale: both span the full height of their cell.
    for name, values in FOLLOWERS.items():
        assert f"{values[0]:,}" in svg and f"{values[-1]:,}" in svg, name
    assert "(+21.0%)" in svg and "(+2.0%)" in svg  # growth in percent, comparable across sizes
    assert "no follower_count: nostats (the user.info.stats scope is not granted)" in svg
    assert "no follower_count for nostats" in result.stderr


def test_chart_of_the_demo_reads_the_demo_home(tmp_path):
    demo_url = settings.warehouse_url(os.environ | {"TIKTOK_CRM_SYNC_MODE": "demo"})
    seed_warehouse(demo_url)
    live = CliRunner().invoke(main, ["chart"])
    assert live.exit_code == 1 and "chart --demo" in live.stderr  # the live warehouse is empty
    demo = CliRunner().invoke(main, ["chart", "--demo", "--out", str(tmp_path / "x.svg")])
    assert demo.exit_code == 0, demo.output
    assert len(re.findall("<polyline", (tmp_path / "x.svg").read_text())) == 2
