"""`crm setup` against the fakes: an empty and a half-configured HubSpot portal and Salesforce org.

Each test points the command at a fake on 127.0.0.1 through the same variables as the push and
runs it in-process with the project's shipped mapping files, then reads back what the fake now
holds and which requests it received: the plan comes first, a dry run writes nothing, a second
run changes nothing, and a refused scope or a missing field is an error that says what to do.
"""

import pytest
from click.testing import CliRunner

from pipelines.cli.crm import crm
from simulators.crm_fakes import FakeHubSpot, FakeSalesforce, SObjectSpec
from tests.crm.fixtures import hubspot_client, use_hubspot, use_salesforce

KEY = "tiktok_open_id"
SF_KEY = "TikTok_Open_Id__c"


@pytest.fixture
def empty_portal(clock):
    fake = FakeHubSpot(unique_properties={"contacts": set()}, strict_properties=True, clock=clock)
    with fake.running():
        use_hubspot(fake)
        yield fake


def setup(target: str, *args: str):
    return CliRunner().invoke(crm, ["setup", "--target", target, *args])


def posts(fake) -> list[str]:
    return [r.path for r in fake.requests if r.method == "POST"]


def test_a_dry_run_on_an_empty_portal_shows_the_plan_and_creates_nothing(empty_portal):
    result = setup("hubspot", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "create  contacts property group tiktok" in result.output
    assert f"create  contacts property {KEY}: string/text in group tiktok, unique values" in (
        result.output
    )
    assert "tiktok_bio: string/textarea" in result.output  # truncate 65536: multi-line text
    assert "dry run: nothing changed (12 to create, 0 to do by hand)" in result.output
    assert posts(empty_portal) == [] and KEY not in empty_portal.properties()
    assert empty_portal.token not in result.output


def test_setup_on_an_empty_portal_creates_the_properties_then_the_push_works(empty_portal, sleeps):
    result = setup("hubspot")
    assert result.exit_code == 0, result.output
    assert result.output.index("setup plan") < result.output.index("created")
    props = empty_portal.properties()
    assert props[KEY]["hasUniqueValue"] is True and props[KEY]["groupName"] == "tiktok"
    assert props["tiktok_bio"]["fieldType"] == "textarea"
    assert "tiktok" in empty_portal.groups()
    # The portal refuses unknown properties: the shipped mapping's records now go through.
    record = {KEY: "open-1", "tiktok_display_name": "Priya", "tiktok_followers": "12"}
    [pushed] = hubspot_client(empty_portal, sleeps).push_batches([record], KEY)
    assert pushed.created == ("open-1",)


def test_setup_again_finds_everything_ok_and_changes_nothing(empty_portal):
    setup("hubspot")
    empty_portal.reset_requests()
    again = setup("hubspot")
    assert again.exit_code == 0 and "hubspot is ready for the push" in again.output
    assert "create" not in again.output and posts(empty_portal) == []


def test_a_half_configured_portal_gets_only_what_is_missing(empty_portal):
    empty_portal.add_property("contacts", KEY, unique=True)
    empty_portal.add_property("contacts", "tiktok_bio")
    empty_portal.add_property("contacts", "tiktok_followers", "number")
    result = setup("hubspot")
    assert result.exit_code == 0, result.output
    assert f"ok  contacts property {KEY}: exists in group contactinformation" in result.output
    assert "warn  contacts property tiktok_followers: exists with type number" in result.output
    created = [r.body["name"] for r in empty_portal.requests if r.method == "POST"]
    assert created[0] == "tiktok"  # the group before the properties in it
    assert KEY not in created and "tiktok_bio" not in created
    assert "tiktok_display_name" in created and len(created) == 1 + 8


def test_a_key_property_without_unique_values_is_a_manual_step(empty_portal):
    empty_portal.add_property("contacts", KEY)
    result = setup("hubspot")
    assert result.exit_code == 1
    assert f"manual  contacts property {KEY}: exists without unique values" in result.output
    assert "must be done by hand" in result.output


@pytest.mark.parametrize(
    ("granted", "needed"),
    [
        (set(), "crm.schemas.contacts.read"),
        ({"crm.schemas.contacts.read"}, "crm.schemas.contacts.write"),
    ],
)
def test_a_missing_scope_is_a_clear_error_naming_it(empty_portal, granted, needed):
    empty_portal.scopes = granted
    result = setup("hubspot")
    assert result.exit_code == 1
    assert "hubspot setup stopped" in result.output and needed in result.output
    assert empty_portal.token not in result.output


def test_a_missing_token_names_the_variable():
    result = setup("hubspot", "--dry-run")
    assert result.exit_code == 1 and "HUBSPOT_ACCESS_TOKEN is not set" in result.output


@pytest.fixture
def org():
    fake = FakeSalesforce(sobjects={"Contact": SObjectSpec(frozenset(), frozenset({"LastName"}))})
    with fake.running():
        use_salesforce(fake)
        yield fake


def test_salesforce_on_an_empty_org_says_exactly_what_to_create(org):
    result = setup("salesforce", "--dry-run")
    assert result.exit_code == 0, result.output
    assert (
        f"manual  Contact field {SF_KEY} (external id): missing; create it in Setup > Object "
        "Manager > Contact > Fields & Relationships > New: Text(255), Field Label 'TikTok Open "
        f"Id', Field Name TikTok_Open_Id (API name {SF_KEY}); tick External ID and Unique"
    ) in result.output
    assert "TikTok_Bio__c: missing; create it" in result.output
    assert "Long Text Area(32000)" in result.output
    assert "ok  Contact field LastName" in result.output
    assert [r.method for r in org.requests] == ["GET"]  # describe only
    assert setup("salesforce").exit_code == 1  # not ready until the fields exist


def test_salesforce_half_configured_lists_only_what_is_missing(org):
    org.sobjects["Contact"] = SObjectSpec(
        frozenset({SF_KEY}),
        frozenset({"LastName"}),
        fields=(("TikTok_Bio__c", "textarea"), ("TikTok_Followers__c", "double")),
        not_unique=frozenset({SF_KEY}),
    )
    result = setup("salesforce")
    assert result.exit_code == 1
    assert f"warn  Contact field {SF_KEY} (external id): External ID but not Unique" in (
        result.output
    )
    assert "ok  Contact field TikTok_Bio__c" in result.output
    assert "TikTok_Display_Name__c: missing" in result.output


def test_salesforce_key_field_not_marked_external_id_is_a_manual_step(org):
    org.sobjects["Contact"] = SObjectSpec(
        frozenset(), frozenset({"LastName"}), fields=((SF_KEY, "string"),)
    )
    result = setup("salesforce")
    assert "exists but is not an External ID" in result.output and result.exit_code == 1


def test_salesforce_fully_configured_is_ready(org):
    names = [
        "TikTok_Bio__c",
        "TikTok_Display_Name__c",
        "TikTok_Followers__c",
        "TikTok_Following__c",
        "TikTok_Last_Synced__c",
        "TikTok_Likes__c",
        "TikTok_Profile_URL__c",
        "TikTok_Username__c",
        "TikTok_Verified__c",
        "TikTok_Videos__c",
    ]
    org.sobjects["Contact"] = SObjectSpec(
        frozenset({SF_KEY}), frozenset({"LastName"}), fields=tuple((n, "string") for n in names)
    )
    result = setup("salesforce")
    assert result.exit_code == 0, result.output
    assert "salesforce is ready for the push" in result.output
