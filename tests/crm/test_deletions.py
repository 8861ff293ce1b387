"""Deletions mirrored to the CRM fakes through `plan_for` and `run_push` (on_delete).

Contacts shaped like hubspot_contacts (and Salesforce Contacts) are pushed once, then a record's
source row is deleted (its mapped record moves to `deleted`) or its connection is purged (the
audit trail's last event is `purged`); the plan must show the archive before it happens, the run
must archive it in the fake once, and the push state and the audit trail must record it.
"""

import dataclasses

import pytest

from resources.connections.audit import CONNECTED, DISCONNECTED, PURGED, AuditLog
from resources.crm.deletions import DeletePolicy
from resources.crm.models import ARCHIVE, FLAG, KEEP, VALIDATION, Archive
from resources.crm.push import DELETED_REASON, PURGED_REASON, plan_for, run_push
from resources.crm.state import ARCHIVED_EVENT, ARCHIVED_HASH, PushStateStore, Target
from resources.database import make_engine
from tests.crm.fixtures import hubspot_client, salesforce_client

KEY = "tiktok_open_id"
SF_KEY = "TikTok_Open_Id__c"
HUBSPOT = Target("hubspot_contacts", "hubspot", "contacts", "creator-a")
SALESFORCE = Target("salesforce_contacts", "salesforce", "Contact", "creator-a")
PURGE_TIME = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def contacts(count: int, key: str = KEY) -> list[dict]:
    return [{key: f"open-{i:05d}", "tiktok_followers": str(1000 + i)} for i in range(count)]


def sf_contacts(count: int) -> list[dict]:
    return [{SF_KEY: f"open-{i:05d}", "LastName": f"Creator {i}"} for i in range(count)]


@pytest.fixture
def store(tmp_path):
    return PushStateStore(make_engine(f"sqlite:///{tmp_path / 'state.db'}"))


def push(store, client, target, records, key=KEY, **deletions):
    plan = plan_for(store, target.mapping, records, key, connection=target.connection, **deletions)
    return plan, run_push(client, store, target, plan, key)


def purge(store, connection: str = "creator-a") -> None:
    log = AuditLog(store.engine, now=lambda: PURGE_TIME)
    log.record(connection, DISCONNECTED, "connections disconnect --purge")
    log.record(connection, PURGED, "connections disconnect --purge", removed={"tiktok_x": 3})


def test_archive_on_delete_shows_the_archive_then_archives_once(hubspot, sleeps, store):
    client = hubspot_client(hubspot, sleeps)
    records = contacts(3)
    push(store, client, HUBSPOT, records)
    hubspot_id = store.crm_ids(HUBSPOT.mapping, ["open-00001"])["open-00001"]
    live, deleted = [records[0], records[2]], [records[1]]
    calls = hubspot.request_count
    # The plan (what a dry run shows) names the archive before anything is called.
    plan = plan_for(store, HUBSPOT.mapping, live, KEY, on_delete=ARCHIVE, deleted=deleted)
    assert [(a.key, a.crm_id, a.reason) for a in plan.archives] == [
        ("open-00001", hubspot_id, DELETED_REASON)
    ]
    assert (plan.unchanged, hubspot.request_count) == (2, calls)
    report = run_push(client, store, HUBSPOT, plan, KEY)
    assert (report.archived, report.rejected, report.stopped) == (1, (), None)
    assert hubspot.requests[-1].body == {"inputs": [{"id": hubspot_id}]}
    assert hubspot.find("contacts", KEY, "open-00001") is None
    assert len(hubspot.records()) == 2
    assert store.pushed_hashes(HUBSPOT.mapping, ["open-00001"]) == {"open-00001": ARCHIVED_HASH}
    [event] = [e for e in AuditLog(store.engine).events("creator-a") if e.event == ARCHIVED_EVENT]
    assert "open-00001" in event.detail and hubspot_id in event.detail
    # Idempotent: the next run archives nothing and calls nothing.
    calls = hubspot.request_count
    _plan, again = push(store, client, HUBSPOT, live, on_delete=ARCHIVE, deleted=deleted)
    assert (again.archived, again.unchanged, hubspot.request_count) == (0, 3, calls)


def test_keep_pushes_deleted_records_like_any_other(hubspot, sleeps, store):
    client = hubspot_client(hubspot, sleeps)
    records = contacts(2)
    push(store, client, HUBSPOT, records)
    deleted = [records[1] | {"tiktok_deleted_at": "2026-01-02T00:00:00Z"}]
    plan, report = push(store, client, HUBSPOT, [records[0]], on_delete=KEEP, deleted=deleted)
    assert plan.archives == () and report.updated == 1
    assert hubspot.find("contacts", KEY, "open-00001")["tiktok_deleted_at"] != ""


def test_a_video_deleted_then_back_is_pushed_again(hubspot, sleeps, store):
    client = hubspot_client(hubspot, sleeps)
    records = contacts(1)
    push(store, client, HUBSPOT, records)
    push(store, client, HUBSPOT, [], on_delete=ARCHIVE, deleted=records)
    _plan, back = push(store, client, HUBSPOT, records, on_delete=ARCHIVE)
    assert (
        back.created + back.updated == 1 and hubspot.find("contacts", KEY, "open-00000") is not None
    )


def test_a_purged_connection_has_its_records_archived(hubspot, sleeps, store):
    client = hubspot_client(hubspot, sleeps)
    push(store, client, HUBSPOT, contacts(3))
    purge(store)
    # The purge removed the warehouse rows: the push maps no record at all.
    plan, report = push(store, client, HUBSPOT, [], on_delete=ARCHIVE)
    assert [(a.key, a.reason) for a in plan.archives] == [
        (f"open-{i:05d}", PURGED_REASON) for i in range(3)
    ]
    assert report.archived == 3 and hubspot.records() == {}
    events = [e for e in AuditLog(store.engine).events("creator-a") if e.event == ARCHIVED_EVENT]
    assert len(events) == 3


def test_a_purge_followed_by_a_new_connect_archives_nothing(hubspot, sleeps, store):
    client = hubspot_client(hubspot, sleeps)
    push(store, client, HUBSPOT, contacts(2))
    purge(store)
    AuditLog(store.engine).record("creator-a", CONNECTED, "connections add")
    plan, _report = push(store, client, HUBSPOT, [], on_delete=ARCHIVE)
    assert plan.archives == () and len(hubspot.records()) == 2


def test_purges_change_nothing_with_keep(hubspot, sleeps, store):
    client = hubspot_client(hubspot, sleeps)
    push(store, client, HUBSPOT, contacts(2))
    purge(store)
    plan, _report = push(store, client, HUBSPOT, [])
    assert plan.archives == () and len(hubspot.records()) == 2


def test_flag_marks_a_purged_connections_records_once(hubspot, sleeps, store):
    client = hubspot_client(hubspot, sleeps)
    push(store, client, HUBSPOT, contacts(2))
    purge(store)
    policy = DeletePolicy(FLAG, "tiktok_deleted_at", "string")
    plan, report = push(store, client, HUBSPOT, [], on_delete=policy)
    assert (plan.flagged, report.updated, report.archived) == (2, 2, 0)
    flagged = hubspot.find("contacts", KEY, "open-00000")
    assert flagged["tiktok_deleted_at"] == "2026-01-01T00:00:00Z"
    assert flagged["tiktok_followers"] == "1000"  # the rest of the record is left alone
    calls = hubspot.request_count
    again, _report = push(store, client, HUBSPOT, [], on_delete=policy)
    assert again.flagged == 0 and hubspot.request_count == calls


def test_salesforce_archive_deletes_by_id_and_by_external_id(salesforce, sleeps, store):
    client = salesforce_client(salesforce, sleeps)
    records = sf_contacts(3)
    push(store, client, SALESFORCE, records, key=SF_KEY)
    plan = plan_for(
        store, SALESFORCE.mapping, [records[0]], SF_KEY, on_delete=ARCHIVE, deleted=records[1:]
    )
    # One record whose Salesforce id the push state lost: deleted by its external id instead.
    lost = dataclasses.replace(plan.archives[1], crm_id=None)
    plan = dataclasses.replace(plan, archives=(plan.archives[0], lost))
    report = run_push(client, store, SALESFORCE, plan, SF_KEY)
    assert report.archived == 2 and len(salesforce.records()) == 1
    methods = [(r.method, r.path.split("?")[0].rsplit("/", 2)[-2:]) for r in salesforce.requests]
    assert methods[-2:] == [
        ("DELETE", ["composite", "sobjects"]),
        ("DELETE", [SF_KEY, "open-00002"]),
    ]
    assert len(salesforce.deleted["Contact"]) == 2


def test_an_archive_the_crm_refuses_is_kept_and_held(salesforce, sleeps, store):
    client = salesforce_client(salesforce, sleeps)
    records = sf_contacts(1)
    push(store, client, SALESFORCE, records, key=SF_KEY)
    plan = plan_for(store, SALESFORCE.mapping, [], SF_KEY, on_delete=ARCHIVE, deleted=records)
    assert len(plan.archives) == 1
    report = run_push(_NoArchive(client), store, SALESFORCE, plan, SF_KEY)
    [refused] = report.rejected
    assert refused.error_class == VALIDATION and "cannot archive" in refused.reason
    again = plan_for(store, SALESFORCE.mapping, [], SF_KEY, on_delete=ARCHIVE, deleted=records)
    assert again.archives == ()  # held: not tried on every run


class _NoArchive:
    """A client without archive_batches, like the generic preset."""

    def __init__(self, client: object) -> None:
        self._client = client
        self.service, self.batch_size, self.http = "generic", 100, client.http

    def push_batches(self, records: list, key: str):
        return self._client.push_batches(records, key)

    def close(self) -> None:
        self._client.close()


def test_a_refused_delete_is_a_rejection_not_a_stop(salesforce, sleeps, store):
    client = salesforce_client(salesforce, sleeps)
    salesforce.plant_duplicate("Contact", SF_KEY, "open-00007")  # two Contacts, one external id
    [result] = client.archive_batches([Archive("open-00007", None, DELETED_REASON)], SF_KEY)
    [refused] = result.rejected
    assert (refused.key, refused.error_class) == ("open-00007", VALIDATION)
    assert "300" in refused.reason and len(salesforce.records()) == 2


def test_dry_run_metadata_shows_the_archives_before_they_happen(hubspot, sleeps, store):
    from pipelines.defs.crm.push_results import dry_run_metadata
    from resources.settings import mappings_dir
    from transforms import load_mapping

    client = hubspot_client(hubspot, sleeps)
    push(store, client, HUBSPOT, contacts(2))
    plan = plan_for(store, HUBSPOT.mapping, [], KEY, on_delete=ARCHIVE, deleted=contacts(2))
    mapping = load_mapping(mappings_dir() / "hubspot_contacts.yaml")
    metadata = dry_run_metadata("creator-a", mapping, plan, [])
    assert metadata["would_archive"] == 2
    assert [a["key"] for a in metadata["sample_archives"].data] == ["open-00000", "open-00001"]
