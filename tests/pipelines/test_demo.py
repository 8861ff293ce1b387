"""`tiktok-crm-sync demo` end to end: simulator -> OAuth -> Dagster runs -> warehouse.

This is the README's first command (after the install), run through the real CLI entry point in a
subprocess, against a fresh home: the demo keeps its state, warehouse and Dagster instance in the
demo home (`<TIKTOK_CRM_SYNC_HOME>/demo`); DEMO_WAREHOUSE_URL chooses another warehouse for it.
"""

import os
import subprocess
import sys

import pytest
import sqlalchemy as sa

from resources.database import make_engine


def run_demo(env_overrides: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    env = os.environ | env_overrides
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pipelines.cli",
            "demo",
            "--connections",
            "3",
            "--videos",
            "12",
            *args,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def table_counts(url: str) -> dict[str, int]:
    engine = make_engine(url)
    names = [
        "tiktok_profiles",
        "tiktok_videos",
        "crm_contacts",
        "crm_videos",
        "tiktok_profile_stats_daily",
    ]
    with engine.connect() as db:
        counts = {n: db.execute(sa.text(f'SELECT COUNT(*) FROM "{n}"')).scalar_one() for n in names}
    engine.dispose()
    return counts


def assert_demo_loaded(url: str) -> dict[str, int]:
    counts = table_counts(url)
    assert counts["tiktok_profiles"] == counts["crm_contacts"] == 3
    assert counts["tiktok_videos"] == counts["crm_videos"] > 0
    return counts


def test_demo_loads_the_warehouse_and_reruns_idempotently(tmp_path):
    url = f"sqlite:///{tmp_path / 'chosen.db'}"
    first = run_demo({"DEMO_WAREHOUSE_URL": url})
    assert first.returncode == 0, first.stderr[-2000:]
    assert "DEMO MODE" in first.stderr
    assert "connections synced: 3" in first.stderr
    counts = assert_demo_loaded(url)
    second = run_demo({"DEMO_WAREHOUSE_URL": url})
    assert second.returncode == 0, second.stderr[-2000:]
    assert table_counts(url) == counts
    # The runs are real runs of the demo's persistent instance, visible to `ui` afterwards; the
    # live instance (DAGSTER_HOME) holds none of them.
    assert any((tmp_path / "data" / "demo" / "dagster" / "history").glob("runs*"))
    assert not (tmp_path / "dagster_home" / "history").exists()


@pytest.mark.postgres
def test_demo_honours_a_postgresql_warehouse(postgres_url):
    result = run_demo({"DEMO_WAREHOUSE_URL": postgres_url})
    assert result.returncode == 0, result.stderr[-2000:]
    assert_demo_loaded(postgres_url)


def test_demo_refuses_to_run_beside_live_credentials():
    result = run_demo({"TIKTOK_CLIENT_KEY": "awlive", "TIKTOK_CLIENT_SECRET": "s3cr3t-live"})
    assert result.returncode != 0
    assert "refuses to run while TikTok credentials are configured" in result.stderr
    assert "s3cr3t-live" not in result.stderr + result.stdout


def test_demo_with_history_plots_a_trend_and_charts_it(tmp_path):
    """Issue 15: `demo --days N` leaves N daily snapshots per connection, N materializations the
    UI plots (read back from the instance), and `chart` draws them from the warehouse."""
    import dagster as dg

    url = f"sqlite:///{tmp_path / 'history.db'}"
    result = run_demo({"DEMO_WAREHOUSE_URL": url}, "--days", "3")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stderr.count("DEMO MODE") == 1  # one banner, then the progress bar
    engine = make_engine(url)
    with engine.connect() as db:
        days = db.execute(
            sa.text(
                "SELECT snapshot_date, follower_count FROM tiktok_profile_stats_daily "
                "WHERE connection_name = 'demo-01' ORDER BY snapshot_date"
            )
        ).all()
    engine.dispose()
    assert len(days) == 3
    followers = [row[1] for row in days]
    assert followers == sorted(followers) and followers[0] < followers[-1]
    os.environ["DAGSTER_HOME"] = str(tmp_path / "data" / "demo" / "dagster")
    with dg.DagsterInstance.get() as instance:
        events = instance.fetch_materializations(
            dg.AssetRecordsFilter(
                asset_key=dg.AssetKey("tiktok_profile"), asset_partitions=["demo-01"]
            ),
            limit=10,
            ascending=True,
        ).records
    plotted = [event.asset_materialization.metadata["follower_count"].value for event in events]
    assert plotted == followers  # the series the UI plots for the partition
    out = tmp_path / "followers.svg"
    chart = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipelines.cli",
            "chart",
            "--connection",
            "demo-01",
            "--out",
            str(out),
        ],
        env=os.environ | {"WAREHOUSE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert chart.returncode == 0, chart.stderr[-2000:]
    svg = out.read_text()
    assert svg.startswith("<svg") and svg.count("<polyline") == 1 and "demo-01" in svg


def test_reset_clears_the_demo_home_alone_and_a_new_world_starts_at_day_zero():
    from pipelines import demo as demo_mode
    from resources import settings

    live_state = settings.live_data_dir() / "state.db"
    live_state.parent.mkdir(parents=True, exist_ok=True)
    live_state.write_bytes(b"live")
    demo_mode.save_session(demo_mode.DemoSession(seed=42, accounts=5, videos=30, days_lived=6))
    same = demo_mode.continued(demo_mode.DemoSession(42, 5, 30))
    other = demo_mode.continued(demo_mode.DemoSession(7, 5, 30))
    assert (same.days_lived, other.days_lived) == (6, 0)

    home = demo_mode.reset_demo()
    assert home == settings.demo_home() and not home.exists()
    assert live_state.read_bytes() == b"live"
    assert demo_mode.load_session() is None
