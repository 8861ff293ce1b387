"""CRM settings from the environment: what configures a target, and every bad value's message."""

import pytest

from resources.crm.config import GenericSettings, HubSpotSettings, SalesforceSettings
from resources.crm.errors import MissingCrmSetting
from resources.crm.presets import configured_kinds, load_settings


def test_a_target_is_configured_by_its_base_variable_only():
    environ = {"HUBSPOT_ACCESS_TOKEN": "t", "GENERIC_CRM_URL": "https://x.example"}
    assert configured_kinds(environ) == ("hubspot", "generic")
    assert configured_kinds({"HUBSPOT_ACCESS_TOKEN": "  "}) == ()


def test_defaults_and_full_settings():
    hubspot = load_settings("hubspot", {"HUBSPOT_ACCESS_TOKEN": "pat-na1-secret"})
    assert hubspot == HubSpotSettings("https://api.hubapi.com", "pat-na1-secret")
    assert "pat-na1-secret" not in repr(hubspot)
    salesforce = load_settings(
        "salesforce",
        {
            "SALESFORCE_INSTANCE_URL": "https://acme.my.salesforce.com/",
            "SALESFORCE_ACCESS_TOKEN": "00Dxx!secret",
            "SALESFORCE_API_VERSION": "v60.0",
        },
    )
    assert salesforce == SalesforceSettings(
        "https://acme.my.salesforce.com", "60.0", "00Dxx!secret"
    )
    assert "secret" not in repr(salesforce)
    generic = load_settings(
        "generic",
        {
            "GENERIC_CRM_URL": "https://hooks.example/{object}?k=1",
            "GENERIC_CRM_METHOD": "patch",
            "GENERIC_CRM_BATCH_SIZE": "25",
            "GENERIC_CRM_AUTH_HEADER": "X-Api-Key: k3y",
        },
    )
    assert generic == GenericSettings(
        "https://hooks.example/{object}?k=1", "PATCH", 25, ("X-Api-Key", "k3y")
    )
    assert "k3y" not in repr(generic) and "k=1" not in repr(generic)


def test_a_bare_auth_header_value_goes_in_authorization():
    settings = load_settings(
        "generic", {"GENERIC_CRM_URL": "https://h.example", "GENERIC_CRM_AUTH_HEADER": "Bearer abc"}
    )
    assert settings.auth_header == ("Authorization", "Bearer abc")


@pytest.mark.parametrize(
    ("kind", "environ", "variable", "hint"),
    [
        ("hubspot", {}, "HUBSPOT_ACCESS_TOKEN", "private app access token"),
        (
            "hubspot",
            {"HUBSPOT_ACCESS_TOKEN": "t", "HUBSPOT_BASE_URL": "http://api.hubapi.com"},
            "HUBSPOT_BASE_URL",
            "https://",
        ),
        (
            "salesforce",
            {"SALESFORCE_INSTANCE_URL": "https://a.example"},
            "SALESFORCE_ACCESS_TOKEN",
            "access token",
        ),
        (
            "salesforce",
            {
                "SALESFORCE_INSTANCE_URL": "https://a.example",
                "SALESFORCE_ACCESS_TOKEN": "t",
                "SALESFORCE_API_VERSION": "45.0",
            },
            "SALESFORCE_API_VERSION",
            "at least 46.0",
        ),
        ("generic", {}, "GENERIC_CRM_URL", "endpoint"),
        (
            "generic",
            {"GENERIC_CRM_URL": "https://h.example", "GENERIC_CRM_METHOD": "GET"},
            "GENERIC_CRM_METHOD",
            "POST",
        ),
        (
            "generic",
            {"GENERIC_CRM_URL": "https://h.example", "GENERIC_CRM_BATCH_SIZE": "0"},
            "GENERIC_CRM_BATCH_SIZE",
            "1 to 1000",
        ),
    ],
)
def test_missing_or_bad_settings_name_the_variable(kind, environ, variable, hint):
    with pytest.raises(MissingCrmSetting, match=hint) as raised:
        load_settings(kind, environ)
    assert raised.value.variable == variable and variable in str(raised.value)
    assert raised.value.metadata()["variable"] == variable


def test_plain_http_is_allowed_only_on_loopback():
    settings = load_settings(
        "hubspot", {"HUBSPOT_ACCESS_TOKEN": "t", "HUBSPOT_BASE_URL": "http://127.0.0.1:9/"}
    )
    assert settings.base_url == "http://127.0.0.1:9"
