"""A new CRM target is its client module plus one preset row (docs/crm.md, "Adding a CRM target").

The first half of this file *is* that client module, for a made-up CRM, TinyCRM: its settings,
read from TINYCRM_URL and TINYCRM_TOKEN, and a client that posts `{"records": [...]}` to
`{TINYCRM_URL}/{object}`. The `tinycrm` fixture adds its one row to `PRESETS` and removes it
afterwards. Round trip: the environment configures the target, a mapping file for `kind: tinycrm`
is checked against the row's rules, `CrmResource` builds the client from the row, and `plan_for`
plus `run_push` send the mapped records to a fake TinyCRM on 127.0.0.1, then send nothing again.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
import pytest

from resources.crm.batching import BatchSender
from resources.crm.config import required, secure_url
from resources.crm.errors import AuthError, DemoModeRefused, RequestRejected, TransientError
from resources.crm.http import CrmHttp
from resources.crm.models import BatchResult, Record
from resources.crm.presets import PRESETS, CrmPreset, NameRule, configured_kinds, preset
from resources.crm.push import plan_for, run_push
from resources.crm.resource import CrmResource
from resources.crm.state import PushStateStore, Target
from resources.database import make_engine
from simulators.crm_fakes import CrmFake
from simulators.crm_fakes.server import json_reply
from simulators.tiktok.responses import Reply, SimRequest
from tests.transforms.builders import ALL_SCOPES, PROFILE
from transforms import MappingError, apply_mapping, parse_mapping

# --- the client module: what resources/crm/tinycrm.py would hold ------------------------------

TINYCRM = "tinycrm"
MAX_BATCH = 2  # small, so three records take two requests


@dataclass(frozen=True)
class TinySettings:
    url: str
    token: str = field(repr=False)

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""


def tiny_settings(environ: Mapping[str, str]) -> TinySettings:
    url = required(environ, "TINYCRM_URL", TINYCRM, "the TinyCRM API address")
    token = required(environ, "TINYCRM_TOKEN", TINYCRM, "a TinyCRM API token")
    return TinySettings(secure_url(url, "TINYCRM_URL", TINYCRM).rstrip("/"), token)


class TinyClient:
    """Upserts records of one object: `POST {url}/{object}`, one result per record."""

    service = TINYCRM

    def __init__(self, settings: TinySettings, object_name: str, *, http: CrmHttp) -> None:
        self._settings = settings
        self._url = f"{settings.url}/{object_name}"
        self.http = http
        self.batch_size = MAX_BATCH

    def close(self) -> None:
        self.http.close()

    def push_batches(self, records: Sequence[Record], key: str) -> Iterator[BatchResult]:
        return BatchSender(lambda batch: self._send(batch, key), key, self.batch_size).batches(
            records
        )

    def _send(self, batch: list[Record], key: str) -> BatchResult:
        headers = {"Authorization": f"Bearer {self._settings.token}"}
        body = {"key": key, "records": batch}
        response = self.http.send(
            "POST", self._url, json=body, headers=headers, classify=self._classify
        )
        outcomes = {item["key"]: item["status"] for item in response.json()["results"]}
        keys = [str(record[key]) for record in batch]
        return BatchResult(
            created=tuple(k for k in keys if outcomes.get(k) == "created"),
            updated=tuple(k for k in keys if outcomes.get(k) == "updated"),
        )

    def _classify(self, response: httpx.Response) -> httpx.Response:
        status = response.status_code
        if status == 200:
            return response
        facts = {"service": TINYCRM, "status": status}
        if status == 401:
            raise AuthError("TinyCRM refused the token; set TINYCRM_TOKEN", **facts)
        if status >= 500:
            raise TransientError(f"TinyCRM answered {status}", **facts)
        raise RequestRejected(f"TinyCRM refused the batch ({status})", **facts)


# --- the one row ------------------------------------------------------------------------------

TINYCRM_PRESET = CrmPreset(
    kind=TINYCRM,
    label="TinyCRM",
    base_variable="TINYCRM_URL",
    settings=tiny_settings,
    client=TinyClient,
    max_batch=MAX_BATCH,
    field_names=NameRule(re.compile(r"[a-z][a-z0-9_]*"), "lowercase letters, digits and _"),
    object_names=NameRule(re.compile(r"[a-z]+"), "a lowercase object name such as contacts"),
    strings_only=True,
)

# --- the test ---------------------------------------------------------------------------------

TOKEN = "tiny-test-token"
MAPPING = """
version: 1
name: tinycrm_contacts
source: profile
target: {kind: tinycrm, object: contacts}
key: [tiny_open_id]
fields:
  - {source: open_id, target: tiny_open_id, type: string, required: true}
  - {source: display_name, target: tiny_name, type: string, transforms: [strip]}
  - {source: follower_count, target: tiny_followers, type: string}
"""


class FakeTinyCrm(CrmFake):
    """TinyCRM on 127.0.0.1: stores records by key and says which it created or updated."""

    def __init__(self) -> None:
        super().__init__()
        self.stored: dict[str, dict[str, dict]] = {}

    def answer(self, request: SimRequest, fault: str | None) -> Reply:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return json_reply(401, {"message": "bad token"})
        body = json.loads(request.body)
        table = self.stored.setdefault(request.path.strip("/"), {})
        results = []
        for record in body["records"]:
            key = record[body["key"]]
            results.append({"key": key, "status": "updated" if key in table else "created"})
            table[key] = record
        return json_reply(200, {"results": results})


@pytest.fixture
def tinycrm() -> Iterator[CrmPreset]:
    """TinyCRM's row in the table for one test, and gone afterwards."""
    PRESETS[TINYCRM] = TINYCRM_PRESET
    try:
        yield TINYCRM_PRESET
    finally:
        del PRESETS[TINYCRM]


@pytest.fixture
def fake_tinycrm(monkeypatch) -> Iterator[FakeTinyCrm]:
    fake = FakeTinyCrm()
    with fake.running() as url:
        monkeypatch.setenv("TINYCRM_URL", url)
        monkeypatch.setenv("TINYCRM_TOKEN", TOKEN)
        yield fake


def profiles(count: int) -> list[dict]:
    return [PROFILE | {"open_id": f"open-{i}", "follower_count": 100 + i} for i in range(count)]


def test_without_its_row_the_target_is_unknown_everywhere():
    with pytest.raises(ValueError, match="unknown CRM target kind 'tinycrm'"):
        preset(TINYCRM)
    with pytest.raises(MappingError, match="unknown target kind 'tinycrm'"):
        parse_mapping(MAPPING, "tinycrm_contacts.yaml")
    assert TINYCRM not in configured_kinds({"TINYCRM_URL": "https://tiny.example"})


def test_the_row_configures_the_target_and_its_rules_check_the_mapping(tinycrm):
    assert configured_kinds({"TINYCRM_URL": "https://tiny.example"}) == (TINYCRM,)
    mapping = parse_mapping(MAPPING, "tinycrm_contacts.yaml")
    assert (mapping.target.kind, mapping.key) == (TINYCRM, ("tiny_open_id",))
    refusals = [
        (MAPPING.replace("type: string}", "type: integer}"), "TinyCRM property values are strings"),
        (MAPPING.replace("target: tiny_name", "target: TinyName"), "lowercase letters, digits"),
        (MAPPING.replace("object: contacts", "object: Contacts"), "a lowercase object name"),
        (MAPPING + "on_delete: archive\n", "TinyCRM has no archive call"),
    ]
    for text, message in refusals:
        with pytest.raises(MappingError, match=message):
            parse_mapping(text, "tinycrm_contacts.yaml")


def test_a_push_goes_through_the_row_to_the_fake_and_a_rerun_sends_nothing(
    tinycrm, fake_tinycrm, tmp_path
):
    mapping = parse_mapping(MAPPING, "tinycrm_contacts.yaml")
    records = apply_mapping(mapping, profiles(3), ALL_SCOPES).records
    store = PushStateStore(make_engine(f"sqlite:///{tmp_path / 'state.db'}"))
    target = Target(mapping.name, TINYCRM, mapping.target.object, "creator-a")
    key = mapping.key[0]
    with CrmResource().client(TINYCRM, mapping.target.object) as client:
        assert isinstance(client, TinyClient)
        report = run_push(client, store, target, plan_for(store, mapping.name, records, key), key)
        assert client.http.stats.requests == 2  # three records, two per request
    assert (report.created, report.updated, report.rejected) == (3, 0, ())
    stored = fake_tinycrm.stored["contacts"]
    assert sorted(stored) == ["open-0", "open-1", "open-2"]
    assert stored["open-1"] == {
        "tiny_open_id": "open-1",
        "tiny_name": "Ana Creates",
        "tiny_followers": "101",
    }
    assert fake_tinycrm.requests[0].headers["user-agent"].startswith("tiktok-crm-sync/")
    with CrmResource().client(TINYCRM, mapping.target.object) as client:
        again = run_push(client, store, target, plan_for(store, mapping.name, records, key), key)
    assert (again.created, again.unchanged, fake_tinycrm.request_count) == (0, 3, 2)


def test_demo_mode_and_the_batch_limit_hold_for_a_new_target_too(tinycrm, monkeypatch):
    monkeypatch.setenv("TINYCRM_URL", "https://api.tinycrm.example")
    monkeypatch.setenv("TINYCRM_TOKEN", TOKEN)
    with (
        pytest.raises(DemoModeRefused, match=r"api\.tinycrm\.example"),
        CrmResource(mode="demo").client(TINYCRM, "contacts"),
    ):
        pass
    # A row whose limit is below what its client sends: the resource refuses the client.
    PRESETS[TINYCRM] = dataclasses.replace(TINYCRM_PRESET, max_batch=MAX_BATCH - 1)
    with (
        pytest.raises(ValueError, match="1 to 1 records per request"),
        CrmResource().client(TINYCRM, "contacts"),
    ):
        pass
