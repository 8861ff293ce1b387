"""Diff-based pushes end to end below Dagster: push state + HubSpotClient + the fake HubSpot.

Records shaped like hubspot_contacts go through `plan_for` and `run_push` with the push state in
a temporary SQLite state database (and once in PostgreSQL); the fake counts the calls, so
"unchanged records cost zero calls" and "a stopped push resumes where it stopped" are measured.
"""

import pytest

from resources.crm.diff import content_hash
from resources.crm.hubspot import STATUS_ATTEMPTS
from resources.crm.models import AUTH, TRANSIENT, VALIDATION
from resources.crm.push import plan_for, run_push
from resources.crm.state import MAX_TRANSIENT_ATTEMPTS, PushStateStore, Target
from resources.database import make_engine
from tests.crm.fixtures import hubspot_client

KEY = "tiktok_open_id"
TARGET = Target("hubspot_contacts", "hubspot", "contacts", "creator-a")
VOLATILE = frozenset({"tiktok_last_synced_at"})


def contacts(count: int, synced: str = "2026-01-01T06:00:00Z", **changes: dict) -> list[dict]:
    records = [
        {KEY: f"open-{i:05d}", "tiktok_followers": str(1000 + i), "tiktok_last_synced_at": synced}
        for i in range(count)
    ]
    for key, change in changes.items():
        records[int(key.removeprefix("r"))] |= change
    return records


@pytest.fixture
def store(tmp_path):
    return PushStateStore(make_engine(f"sqlite:///{tmp_path / 'state.db'}"))


def push(store, client, records, force=False):
    plan = plan_for(store, TARGET.mapping, records, KEY, volatile=VOLATILE, force=force)
    return run_push(client, store, TARGET, plan, KEY)


def test_unchanged_records_cost_no_call_and_changed_ones_one_batch(hubspot, sleeps, store):
    client = hubspot_client(hubspot, sleeps)
    first = push(store, client, contacts(250))
    assert (first.created, first.updated, hubspot.request_count) == (250, 0, 3)
    # A later sync: new load time everywhere, two follower counts changed.
    later = contacts(
        250, "2026-01-02T06:00:00Z", r7={"tiktok_followers": "9"}, r9={"tiktok_followers": "8"}
    )
    second = push(store, client, later)
    assert (second.created, second.updated, second.unchanged) == (0, 2, 248)
    assert hubspot.request_count == 4 and len(hubspot.requests[-1].body["inputs"]) == 2
    third = push(store, client, later)
    assert (third.unchanged, hubspot.request_count) == (250, 4)
    assert len(hubspot.records()) == 250


def test_a_forced_push_sends_everything_and_still_never_duplicates(hubspot, sleeps, store):
    client = hubspot_client(hubspot, sleeps)
    push(store, client, contacts(120))
    forced = push(store, client, contacts(120), force=True)
    assert (forced.updated, forced.unchanged, hubspot.request_count) == (120, 0, 4)
    assert len(hubspot.records()) == 120


def test_transient_rejections_are_retried_next_run_validation_ones_held(hubspot, sleeps, store):
    client = hubspot_client(hubspot, sleeps)
    hubspot.fail_record("open-00001", "try again", "RATE_LIMITS")
    hubspot.fail_record(
        "open-00002", "Property values were not valid: tiktok_bio", "VALIDATION_ERROR"
    )
    first = push(store, client, contacts(4))
    assert sorted((r.key, r.error_class) for r in first.rejected) == [
        ("open-00001", TRANSIENT),
        ("open-00002", VALIDATION),
    ]
    kept = {r.record_key: r for r in store.rejections("hubspot_contacts")}
    assert kept["open-00002"].reason.startswith("Property values were not valid")
    assert kept["open-00002"].record[KEY] == "open-00002"  # the content is kept, not lost
    hubspot.clear_failures()
    second = push(store, client, contacts(4))
    # Only the transient one is sent again; the refused content is held until it changes.
    assert [item["id"] for item in hubspot.requests[-1].body["inputs"]] == ["open-00001"]
    assert (second.created, second.held) == (1, 1)
    assert [r.record_key for r in store.rejections()] == ["open-00002"]
    third = push(store, client, contacts(4, r2={"tiktok_followers": "1"}))
    assert third.created == 1 and store.rejections() == []


def test_a_daily_limit_stop_keeps_what_was_sent_and_resumes_with_the_rest(hubspot, sleeps, store):
    hubspot.daily_limit = 2
    client = hubspot_client(hubspot, sleeps)
    stopped = push(store, client, contacts(350))
    assert stopped.stopped is not None and stopped.stopped.code == "DAILY"
    assert (stopped.created, stopped.not_sent) == (200, 150)
    assert {r.error_class for r in stopped.rejected} == {TRANSIENT}
    assert store.pushed_count("hubspot_contacts") == 200
    hubspot.daily_limit = 10
    resumed = push(store, client, contacts(350))
    assert (resumed.created, resumed.unchanged, resumed.stopped) == (150, 200, None)
    assert [len(r.body["inputs"]) for r in hubspot.requests if r.body][-2:] == [100, 50]
    assert store.rejections() == [] and len(hubspot.records()) == 350


def test_refused_credentials_mark_the_unsent_records_as_auth(hubspot, sleeps, store):
    hubspot.inject("unauthorized")
    report = push(store, hubspot_client(hubspot, sleeps), contacts(3))
    assert report.stopped is not None and report.not_sent == 3
    assert {r.error_class for r in store.rejections()} == {AUTH}
    assert hubspot.token not in " ".join(r.reason for r in store.rejections())


def test_rejections_count_their_attempts(hubspot, sleeps, store):
    hubspot.fail_record("open-00000", "nope", "RATE_LIMITS")
    client = hubspot_client(hubspot, sleeps)
    push(store, client, contacts(1))
    push(store, client, contacts(1))
    [kept] = store.rejections()
    assert kept.attempts == 2 and kept.error_class == TRANSIENT


@pytest.mark.postgres
def test_push_state_in_postgresql(hubspot, sleeps, postgres_url):
    store = PushStateStore(make_engine(postgres_url))
    PushStateStore(make_engine(postgres_url))  # creating the tables twice is harmless
    client = hubspot_client(hubspot, sleeps)
    hubspot.fail_record("open-00003", "bad", "VALIDATION_ERROR")
    push(store, client, contacts(5))
    again = push(store, client, contacts(5))
    assert (again.unchanged, again.held, hubspot.request_count) == (4, 1, 1)
    record = contacts(5)[0]
    assert store.pushed_hashes("hubspot_contacts", [record[KEY]]) == {
        record[KEY]: content_hash(record, VOLATILE)
    }


def test_a_canceled_batch_is_never_recorded_as_pushed_and_goes_next_run(hubspot, sleeps, store):
    hubspot.answer_batches_with("CANCELED", STATUS_ATTEMPTS)
    client = hubspot_client(hubspot, sleeps)
    first = push(store, client, contacts(2))
    assert (first.created, store.pushed_count("hubspot_contacts")) == (0, 0)
    assert {(r.error_class, "CANCELED" in r.reason) for r in store.rejections()} == {
        (TRANSIENT, True)
    }
    second = push(store, client, contacts(2))
    assert second.created == 2 and store.rejections() == []


def test_a_record_refused_as_transient_is_given_up_after_the_bounded_attempts(
    hubspot, sleeps, store
):
    hubspot.fail_record("open-00000", "try later", "RATE_LIMITS")
    client = hubspot_client(hubspot, sleeps)
    for _ in range(MAX_TRANSIENT_ATTEMPTS - 1):
        push(store, client, contacts(1))
    [kept] = store.rejections()
    assert kept.error_class == TRANSIENT
    last = push(store, client, contacts(1))
    [kept] = store.rejections()
    assert (kept.error_class, kept.attempts) == (VALIDATION, MAX_TRANSIENT_ATTEMPTS)
    assert kept.reason.startswith(f"gave up after {MAX_TRANSIENT_ATTEMPTS} attempts")
    assert last.rejected[0].error_class == VALIDATION  # in the run's metadata too
    calls = hubspot.request_count
    held = push(store, client, contacts(1))
    assert (held.held, hubspot.request_count) == (1, calls)  # never an endless transient


def test_records_a_stop_never_sent_do_not_count_as_attempts(hubspot, sleeps, store):
    hubspot.inject("daily_limit")
    push(store, hubspot_client(hubspot, sleeps), contacts(1))
    [kept] = store.rejections()
    assert (kept.attempts, kept.error_class) == (0, TRANSIENT)
