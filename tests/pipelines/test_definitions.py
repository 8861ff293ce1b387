"""The whole code location loads, with the job, schedule and sensor the daily sync relies on."""

import dagster as dg
import pytest

from pipelines.definitions import defs
from tests.pipelines.helpers import Harness, connect, use_live_app


@pytest.fixture(scope="module")
def loaded() -> dg.Definitions:
    # Loaded once: the defs-folder loader keeps a reference to the instance it was loaded with.
    return defs()


def test_definitions_load_with_every_piece(loaded):
    keys = {key.to_user_string() for key in loaded.resolve_asset_graph().get_all_asset_keys()}
    assert {"tiktok_profile", "tiktok_videos", "crm_contacts", "crm_videos"} <= keys
    assert loaded.resolve_job_def("tiktok_daily_sync") is not None
    assert loaded.resolve_schedule_def("tiktok_daily_sync_schedule").cron_schedule == "0 6 * * *"
    assert loaded.resolve_sensor_def("tiktok_connection_partitions_sensor") is not None


def test_partitions_sensor_mirrors_the_registry(loaded, simulator, tmp_path):
    use_live_app(simulator)
    harness = Harness(simulator, tmp_path)
    for index, name in enumerate(["keep", "gone"]):
        connect(simulator, harness.store, name, account=index)
    harness.store.set_status("gone", "disconnected")
    sensor = loaded.resolve_sensor_def("tiktok_connection_partitions_sensor")
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("tiktok_connection", ["gone", "stale"])
        with dg.build_sensor_context(
            instance=instance, resources={"state_db": harness.resources["state_db"]}
        ) as context:
            result = sensor(context)
    requests = {
        type(r).__name__: sorted(r.partition_keys) for r in result.dynamic_partitions_requests
    }
    assert requests == {
        "AddDynamicPartitionsRequest": ["keep"],
        "DeleteDynamicPartitionsRequest": ["gone", "stale"],
    }


def test_the_range_tags_are_the_ones_dagster_writes():
    """The project names Dagster's ranged-run tags itself (their constants are private): a Dagster
    upgrade that renames them must fail here, not silently split runs differently."""
    from dagster._core.storage import tags as dagster_tags

    from pipelines.defs.tiktok import partitions

    assert (
        partitions.ASSET_PARTITION_RANGE_START_TAG == dagster_tags.ASSET_PARTITION_RANGE_START_TAG
    )
    assert partitions.ASSET_PARTITION_RANGE_END_TAG == dagster_tags.ASSET_PARTITION_RANGE_END_TAG
