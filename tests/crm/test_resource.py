"""CrmResource opens the preset's client from the environment, and demo mode stays on loopback."""

import pytest

from resources.crm.errors import DemoModeRefused, MissingCrmSetting
from resources.crm.hubspot import HubSpotClient
from resources.crm.resource import CrmResource
from tests.crm.fixtures import use_hubspot


def test_the_client_is_built_from_the_environment_at_run_time(hubspot, monkeypatch):
    resource = CrmResource()
    with (
        pytest.raises(MissingCrmSetting, match="HUBSPOT_ACCESS_TOKEN"),
        resource.client("hubspot", "contacts"),
    ):
        pass
    use_hubspot(hubspot)
    with resource.client("hubspot", "contacts") as client:
        assert isinstance(client, HubSpotClient) and client.batch_size == 100


def test_demo_mode_refuses_a_real_crm_but_accepts_a_local_fake(hubspot, monkeypatch):
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", "pat-real-looking")
    demo = CrmResource(mode="demo")
    with (
        pytest.raises(DemoModeRefused, match=r"api\.hubapi\.com") as raised,
        demo.client("hubspot", "contacts"),
    ):
        pass
    assert "pat-real-looking" not in str(raised.value)
    use_hubspot(hubspot)
    with demo.client("hubspot", "contacts") as client:
        assert client.service == "hubspot"
