"""CRM push assets end to end: simulator -> TikTok assets -> warehouse -> push asset -> fake CRM.

Each test syncs a simulated connection with the Harness (real OAuth exchange, real TikTok assets
on temporary SQLite), then materializes the HubSpot or Salesforce push asset for that partition
against the project's fake CRM on 127.0.0.1, and reads the fake's stored records and call count,
the state database's rejections and the run's events back.
"""

import os

import dagster as dg
import pytest

from pipelines.defs.crm.checks import REJECT_RATE_CHECK
from pipelines.defs.sync.assets import build_sync_assets, sync_assets
from resources.crm.resource import CrmResource
from resources.crm.state import PushStateStore
from resources.database import make_engine
from services.crm_records import push_mappings, warehouse_mappings
from simulators.crm_fakes import FakeHubSpot
from tests.crm import fixtures
from tests.crm.fixtures import use_hubspot, use_salesforce
from tests.pipelines.helpers import (
    Harness,
    connect,
    failure_description,
    materializations,
    metadata,
    sync_config,
    use_live_app,
)
from transforms import parse_mapping

# The CRM fakes and the clearing of CRM variables, shared with tests/crm.
_no_crm_settings, clock = fixtures._no_crm_settings, fixtures.clock
hubspot, salesforce = fixtures.hubspot, fixtures.salesforce


@pytest.fixture
def harness(simulator, tmp_path):
    use_live_app(simulator)
    harness = Harness(simulator, tmp_path)
    for index, name in enumerate(["creator-a", "creator-b"]):
        connect(simulator, harness.store, name, account=index)
    return harness


def push_asset(kind: str) -> str:
    """The push asset of `kind`: the name of its mapping."""
    return next(m for m in push_mappings() if m.target.kind == kind).name


def run_push(harness: Harness, asset: str, partition: str = "creator-a", **config):
    """Materialize only the push asset of the connection, as the `crm_push` job does."""
    pushes = [m for m in push_mappings() if m.name == asset]
    return dg.materialize(
        [build_sync_assets([], pushes)],
        selection=[asset],
        partition_key=partition,
        resources=harness.resources | {"crm": CrmResource(backoff_cap_s=0.0, max_wait_s=0.0)},
        instance=harness.instance,
        raise_on_error=False,
        run_config=sync_config(**config),
    )


def check_passed(result: dg.ExecuteInProcessResult) -> bool:
    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.check_name == REJECT_RATE_CHECK
    return evaluation.passed


def rejections(harness: Harness):
    return PushStateStore(make_engine(harness.resources["state_db"].url)).rejections()


def test_push_creates_the_contact_and_a_rerun_sends_nothing(simulator, harness, hubspot):
    use_hubspot(hubspot)
    asset = push_asset("hubspot")
    assert harness.sync("creator-a").success
    first = run_push(harness, asset)
    assert first.success, failure_description(first)
    meta = metadata(first, "hubspot_contacts")
    assert (meta["created"], meta["updated"], meta["api_requests"]) == (1, 0, 1)
    assert check_passed(first)
    [stored] = hubspot.records().values()
    account = simulator.accounts[0]
    assert stored["tiktok_open_id"] == account.open_id
    assert stored["tiktok_followers"].isdigit()  # every value went as a string
    # The next daily sync reloads the profile (new load time, same content): zero calls.
    assert harness.sync("creator-a").success
    second = run_push(harness, asset)
    assert metadata(second, "hubspot_contacts")["unchanged"] == 1
    assert metadata(second, "hubspot_contacts")["api_requests"] == 0
    assert hubspot.request_count == 1
    forced = run_push(harness, asset, force_full_push=True)
    assert metadata(forced, "hubspot_contacts")["updated"] == 1
    assert len(hubspot.records()) == 1 and hubspot.request_count == 2
    events = " ".join(
        str(event) for result in (first, second, forced) for event in result.all_events
    )
    assert hubspot.token not in events


def test_dry_run_reports_would_be_changes_without_calling(harness, hubspot):
    use_hubspot(hubspot)
    asset = push_asset("hubspot")
    assert harness.sync("creator-a").success
    dry = run_push(harness, asset, dry_run=True)
    assert dry.success, failure_description(dry)
    assert hubspot.request_count == 0
    assert materializations(dry, "hubspot_contacts") == []
    [observation] = [
        event.asset_observation_data.asset_observation
        for event in dry.all_events
        if event.event_type_value == "ASSET_OBSERVATION"
        and event.asset_key == dg.AssetKey("hubspot_contacts")
    ]
    meta = {key: value.value for key, value in observation.metadata.items()}
    assert (meta["would_create"], meta["would_update"], meta["api_requests"]) == (1, 0, 0)
    assert meta["sample_creates"][0]["tiktok_open_id"] == harness.store.get("creator-a").open_id
    # Nothing was recorded, so the real push still creates the record.
    real = run_push(harness, asset)
    assert metadata(real, "hubspot_contacts")["created"] == 1


def test_a_salesforce_partial_failure_keeps_a_classed_rejection(harness, salesforce):
    use_salesforce(salesforce)
    asset = push_asset("salesforce")
    for name in ("creator-a", "creator-b"):
        assert harness.sync(name).success
    bad = harness.store.get("creator-a").open_id
    salesforce.fail_record(bad, "INVALID_EMAIL_ADDRESS", "Email: invalid email address", ["Email"])
    failed = run_push(harness, asset, "creator-a")
    healthy = run_push(harness, asset, "creator-b")
    # The refused record does not fail the run: it is kept, and the check reports the rate.
    assert failed.success and healthy.success
    meta = metadata(failed, "salesforce_contacts")
    assert (meta["rejected"], meta["rejected_validation"], meta["created"]) == (1, 1, 0)
    # 1 of creator-a's 1 record refused: above the default 5%; creator-b is clean.
    assert not check_passed(failed) and check_passed(healthy)
    [kept] = rejections(harness)
    assert (kept.record_key, kept.error_class, kept.connection_name) == (
        bad,
        "validation",
        "creator-a",
    )
    assert "INVALID_EMAIL_ADDRESS" in kept.reason and kept.record["TikTok_Open_Id__c"] == bad
    assert len(salesforce.records()) == 1


def test_a_transient_rejection_is_sent_again_by_the_next_run(harness, salesforce):
    use_salesforce(salesforce)
    asset = push_asset("salesforce")
    assert harness.sync("creator-a").success
    salesforce.fail_record(harness.store.get("creator-a").open_id, "UNABLE_TO_LOCK_ROW", "locked")
    first = run_push(harness, asset)
    assert metadata(first, "salesforce_contacts")["rejected_transient"] == 1
    salesforce.clear_failures()
    second = run_push(harness, asset)
    assert metadata(second, "salesforce_contacts")["created"] == 1
    assert rejections(harness) == [] and salesforce.request_count == 2


def test_the_daily_limit_fails_the_run_with_the_fix_and_the_next_run_catches_up(harness, hubspot):
    use_hubspot(hubspot)
    asset = push_asset("hubspot")
    assert harness.sync("creator-a").success
    hubspot.inject("daily_limit")
    stopped = run_push(harness, asset)
    assert not stopped.success
    assert "resets at midnight" in failure_description(stopped)
    assert [r.error_class for r in rejections(harness)] == ["transient"]
    resumed = run_push(harness, asset)
    assert metadata(resumed, "hubspot_contacts")["created"] == 1
    assert rejections(harness) == []


def test_a_missing_secret_fails_naming_the_variable(harness, salesforce):
    use_salesforce(salesforce)
    os.environ.pop("SALESFORCE_ACCESS_TOKEN")
    assert harness.sync("creator-a").success
    result = run_push(harness, push_asset("salesforce"))
    assert not result.success
    assert "SALESFORCE_ACCESS_TOKEN is not set" in failure_description(result)
    assert salesforce.request_count == 0


def test_push_assets_exist_only_for_configured_targets(monkeypatch):
    unconfigured = sync_assets()
    assert {key.to_user_string() for a in unconfigured.assets for key in a.keys} == {
        "tiktok_profile",
        "tiktok_videos",
        "tiktok_profile_stats_daily",
        "tiktok_video_metrics_daily",
        "crm_contacts",
        "crm_videos",
    }
    assert not unconfigured.jobs
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", "pat-not-read-at-load")
    monkeypatch.setenv("SALESFORCE_INSTANCE_URL", "https://acme.my.salesforce.com")
    defs = sync_assets()
    keys = {key.to_user_string() for asset in defs.assets for key in asset.keys}
    assert {"hubspot_contacts", "salesforce_contacts"} <= keys
    assert [job.name for job in defs.jobs] == ["crm_push"]
    # The whole code location loads with them, the CRM resource bound by this module.
    from pipelines.definitions import defs as code_location

    loaded = code_location()
    all_keys = {k.to_user_string() for k in loaded.resolve_asset_graph().get_all_asset_keys()}
    assert {"hubspot_contacts", "salesforce_contacts", "crm_contacts"} <= all_keys
    assert loaded.resolve_job_def("crm_push") is not None


ARCHIVING_VIDEOS = """
version: 1
name: hubspot_videos
source: video
target: {kind: hubspot, object: videos}
key: [tiktok_video_id]
on_delete: archive
fields:
  - {source: id, target: tiktok_video_id, type: string, required: true}
  - {source: title, target: title, type: string}
"""


@pytest.fixture
def video_portal(clock):
    """A fake HubSpot portal with a custom `videos` object keyed by tiktok_video_id."""
    fake = FakeHubSpot(clock=clock, unique_properties={"videos": {"tiktok_video_id"}})
    with fake.running():
        yield fake


def test_a_video_tiktok_deleted_is_archived_in_the_crm_by_the_daily_sync(
    simulator, harness, video_portal
):
    """Issue 14: `on_delete: archive` through the sync (TikTok, warehouse and push in one run)."""
    hubspot = video_portal
    use_hubspot(hubspot)
    mapping = parse_mapping(ARCHIVING_VIDEOS)
    harness.assets = [build_sync_assets(warehouse_mappings(), [mapping])]
    harness.resources["crm"] = CrmResource(backoff_cap_s=0.0, max_wait_s=0.0)
    first = harness.sync("creator-a", config={"mode": "full"})
    assert first.success, failure_description(first)
    pushed = hubspot.records("videos")
    assert len(pushed) == simulator.accounts[0].video_count
    gone = simulator.video_ids(0, 0, 1)[0]
    simulator.delete_video(0, gone)
    dry = harness.sync("creator-a", config={"mode": "full", "dry_run": True})
    assert dry.success and not hubspot.archived  # a dry run shows, never archives
    second = harness.sync("creator-a", config={"mode": "full"})
    assert second.success, failure_description(second)
    assert metadata(second, "hubspot_videos")["archived"] == 1
    assert [record["tiktok_video_id"] for record in hubspot.archived["videos"].values()] == [gone]
    assert gone not in {record["tiktok_video_id"] for record in hubspot.records("videos").values()}
