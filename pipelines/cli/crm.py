"""`crm setup` and `crm serve-fake`: prepare a HubSpot portal or a Salesforce org for the push.

`crm setup --target hubspot` creates the custom properties the mapping files write (Properties
API v3); `--target salesforce` checks the external id and mapped fields through describe and says
exactly what to create by hand. Both print the plan first; `--dry-run` stops there. Settings come
from the same variables as the push (HUBSPOT_ACCESS_TOKEN, SALESFORCE_INSTANCE_URL, ...).
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

import click

from resources import settings
from resources.crm.config import HUBSPOT, SALESFORCE, HubSpotSettings
from resources.crm.errors import CrmError
from resources.crm.http import CrmHttp
from resources.crm.presets import load_settings
from resources.crm.setup_hubspot import HubSpotSetup
from resources.crm.setup_plan import SetupPlan
from resources.crm.setup_salesforce import SalesforceSetup
from transforms import Mapping, MappingError, load_mapping
from transforms.crm_fields import field_needs

TARGETS = (HUBSPOT, SALESFORCE)
FAKE_PORT = 8650


@click.group()
def crm() -> None:
    """CRM targets: prepare HubSpot or Salesforce for the push (docs/crm.md)."""


@crm.command("setup")
@click.option("--target", type=click.Choice(TARGETS), required=True, help="The CRM to prepare.")
@click.option("--dry-run", is_flag=True, help="Show the plan; change nothing.")
@click.option(
    "--mapping",
    "files",
    multiple=True,
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="Mapping file to prepare for (repeatable; default: every mapping for the target).",
)
def crm_setup(target: str, dry_run: bool, files: tuple[Path, ...]) -> None:
    """Create or check what the mappings need in the CRM; shows the plan before acting."""
    mappings = _mappings(target, files)
    try:
        target_settings = load_settings(target)
    except CrmError as err:
        raise click.ClickException(err.message) from None
    http = CrmHttp(target)
    try:
        setup = (
            HubSpotSetup(target_settings, http)
            if isinstance(target_settings, HubSpotSettings)
            else SalesforceSetup(target_settings, http)  # type: ignore[arg-type]
        )
        plan = setup.plan(field_needs(mappings))
        _show(plan, mappings)
        if dry_run:
            click.echo(
                f"dry run: nothing changed ({len(plan.creates)} to create, "
                f"{len(plan.manual)} to do by hand)"
            )
            return
        for line in setup.apply(plan):
            click.echo(line)
    except CrmError as err:
        raise click.ClickException(f"{target} setup stopped: {err.message}") from None
    finally:
        http.close()
    if plan.manual:
        raise click.ClickException(
            f"{len(plan.manual)} step(s) above must be done by hand in {target}; then run "
            "`tiktok-crm-sync crm setup` again to check"
        )
    click.echo(f"{target} is ready for the push")


@crm.command("serve-fake")
@click.option("--target", type=click.Choice(TARGETS), required=True)
@click.option("--port", default=FAKE_PORT, show_default=True)
def crm_serve_fake(target: str, port: int) -> None:
    """Serve a fake, empty HubSpot portal or Salesforce org on 127.0.0.1 until Ctrl-C."""
    from simulators.crm_fakes import FakeHubSpot, FakeSalesforce, SObjectSpec

    if target == HUBSPOT:
        fake: FakeHubSpot | FakeSalesforce = FakeHubSpot(
            unique_properties={"contacts": set()}, port=port
        )
        env = f"HUBSPOT_BASE_URL=http://127.0.0.1:{port} HUBSPOT_ACCESS_TOKEN={fake.token}"
    else:
        contact = SObjectSpec(frozenset(), frozenset({"LastName"}))
        fake = FakeSalesforce(sobjects={"Contact": contact}, port=port)
        env = (
            f"SALESFORCE_INSTANCE_URL=http://127.0.0.1:{port} SALESFORCE_ACCESS_TOKEN={fake.token}"
        )
    with fake.running() as url:
        # The fake's token is a fixed, public test value, not a secret.
        click.echo(f"fake {target} on {url}; in another shell:", err=True)
        click.echo(f"  {env} tiktok-crm-sync crm setup --target {target} --dry-run", err=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


def _mappings(target: str, files: tuple[Path, ...]) -> list[Mapping]:
    paths = list(files) or sorted(settings.mappings_dir().glob("*.yaml"))
    try:
        loaded = [load_mapping(path) for path in paths]
    except MappingError as err:
        raise click.ClickException(str(err)) from None
    chosen = [m for m in loaded if m.target.kind == target]
    if not chosen:
        raise click.ClickException(
            f"no mapping targets {target} in {', '.join(map(str, paths))}; add one "
            "(docs/mappings.md) or pass --mapping FILE"
        )
    return chosen


def _show(plan: SetupPlan, mappings: list[Mapping]) -> None:
    names = ", ".join(f"{m.name}.yaml" for m in mappings)
    click.echo(f"{plan.target} setup plan for {names}:")
    for line in plan.lines():
        click.echo(f"  {line}")
