"""Fixtures shared by the CRM tests: fakes on 127.0.0.1, a manual clock, no CRM settings leaking.

Imported by tests/crm/conftest.py and by the pipeline tests of the push assets.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest

from resources.crm.config import HubSpotSettings, SalesforceSettings
from resources.crm.http import CrmHttp
from resources.crm.hubspot import HubSpotClient
from resources.crm.salesforce import SalesforceClient
from simulators.crm_fakes import FakeHubSpot, FakeSalesforce
from simulators.tiktok import ManualClock

CRM_PREFIXES = ("HUBSPOT_", "SALESFORCE_", "GENERIC_CRM_", "CRM_")


class Sleeps:
    """A sleep function that records each wait and moves the fakes' clock instead of sleeping."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.clock.advance(seconds)


@pytest.fixture(autouse=True)
def _no_crm_settings() -> None:
    # The root conftest restores the whole environment afterwards; it does not clear CRM names.
    for name in list(os.environ):
        if name.startswith(CRM_PREFIXES):
            del os.environ[name]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def sleeps(clock: ManualClock) -> Sleeps:
    return Sleeps(clock)


@pytest.fixture
def hubspot(clock: ManualClock) -> Iterator[FakeHubSpot]:
    fake = FakeHubSpot(clock=clock)
    with fake.running():
        yield fake


@pytest.fixture
def salesforce() -> Iterator[FakeSalesforce]:
    fake = FakeSalesforce()
    with fake.running():
        yield fake


def crm_http(service: str, sleep: Sleeps, **policy: object) -> CrmHttp:
    # verify=False: plain HTTP on loopback, and it skips loading CA certificates per test.
    http = httpx.Client(timeout=5.0, verify=False)
    return CrmHttp(service, http=http, sleep=sleep, **policy)


def hubspot_client(fake: FakeHubSpot, sleep: Sleeps, **policy: object) -> HubSpotClient:
    settings = HubSpotSettings(fake.base_url, fake.token)
    return HubSpotClient(settings, "contacts", http=crm_http("hubspot", sleep, **policy))


def salesforce_client(fake: FakeSalesforce, sleep: Sleeps, **policy: object) -> SalesforceClient:
    settings = SalesforceSettings(fake.base_url, "62.0", fake.token)
    return SalesforceClient(settings, "Contact", http=crm_http("salesforce", sleep, **policy))


def use_hubspot(fake: FakeHubSpot) -> None:
    os.environ["HUBSPOT_ACCESS_TOKEN"] = fake.token
    os.environ["HUBSPOT_BASE_URL"] = fake.base_url


def use_salesforce(fake: FakeSalesforce) -> None:
    os.environ["SALESFORCE_INSTANCE_URL"] = fake.base_url
    os.environ["SALESFORCE_ACCESS_TOKEN"] = fake.token
