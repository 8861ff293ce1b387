"""The CRM targets, declared: one row per target, read by everything that differs per target.

A row says how a target is configured (its base variable and settings), which client pushes to
it, and what a mapping for it may hold: the names of its fields and objects, whether every value
must be a string, and whether it can archive records (`on_delete: archive`). The settings reader
(`configured_kinds`, `load_settings`), the Dagster resource (`resources.crm.resource`), the mapping
loader (`transforms.loader`, `transforms.source_fields`) and the push (`push.py`,
`services.crm_mapping`) all read the row, so a new target is its client module plus one row in
`PRESETS` (docs/crm.md, "Adding a CRM target: one module plus one row").

`PRESETS` is read on every call, never copied at import, so a row added at run time (a test's
fixture) counts everywhere.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeGuard

from resources.crm import config
from resources.crm.client import ArchivingClient, CrmClient
from resources.crm.config import CrmSettings
from resources.crm.generic import GenericClient
from resources.crm.http import CrmHttp
from resources.crm.hubspot import MAX_BATCH as HUBSPOT_MAX_BATCH
from resources.crm.hubspot import HubSpotClient
from resources.crm.salesforce import MAX_BATCH as SALESFORCE_MAX_BATCH
from resources.crm.salesforce import SalesforceClient

SettingsLoader = Callable[[Mapping[str, str]], CrmSettings]


class ClientFactory(Protocol):
    """Builds a client for one target object; a client class with this constructor is one."""

    def __call__(self, settings: Any, object_name: str, /, *, http: CrmHttp) -> CrmClient: ...


@dataclass(frozen=True)
class NameRule:
    """What a name must look like: a full-match pattern, and the rule in words for the error."""

    pattern: re.Pattern[str]
    rule: str

    def allows(self, name: str) -> bool:
        return self.pattern.fullmatch(name) is not None


@dataclass(frozen=True)
class CrmPreset:
    """One CRM target: everything the pipeline knows about it outside its client module."""

    kind: str  # `target.kind` in a mapping file and the client's `service` (at most 20 chars)
    label: str  # how messages name the target ("HubSpot")
    base_variable: str  # when set, the target is configured: its push assets are defined
    settings: SettingsLoader  # reads its settings from the environment, at run time only
    client: ClientFactory  # (settings, target.object, http=...) -> the client
    max_batch: int  # records per request at most: the resource refuses a client that sends more
    field_names: NameRule  # what a mapped or computed field's `target` may be
    object_names: NameRule  # what `target.object` may be
    strings_only: bool = False  # every value is sent as a string: mappings must use type: string
    can_archive: bool = False  # its client is an ArchivingClient (`on_delete: archive` allowed)


PRESETS: dict[str, CrmPreset] = {
    config.HUBSPOT: CrmPreset(
        kind=config.HUBSPOT,
        label="HubSpot",
        base_variable=config.HUBSPOT_TOKEN,
        settings=config.hubspot_settings,
        client=HubSpotClient,
        max_batch=HUBSPOT_MAX_BATCH,
        # HubSpot internal property names are lowercase.
        field_names=NameRule(
            re.compile(r"[a-z][a-z0-9_]*"),
            "lowercase letters, digits and _ (HubSpot internal names)",
        ),
        object_names=NameRule(
            re.compile(r"[a-z0-9_][a-z0-9_-]*"), "a HubSpot object type such as contacts"
        ),
        # The batch API takes every property value as a string (crm-apis.md, 1.3).
        strings_only=True,
        can_archive=True,
    ),
    config.SALESFORCE: CrmPreset(
        kind=config.SALESFORCE,
        label="Salesforce",
        base_variable=config.SALESFORCE_INSTANCE,
        settings=config.salesforce_settings,
        client=SalesforceClient,
        max_batch=SALESFORCE_MAX_BATCH,
        # Salesforce API names (TikTok_Open_Id__c) keep their case.
        field_names=NameRule(
            re.compile(r"[A-Za-z][A-Za-z0-9_]*"), "letters, digits and _ (Salesforce API names)"
        ),
        object_names=NameRule(
            re.compile(r"[A-Za-z][A-Za-z0-9_]*"), "an sObject name such as Contact"
        ),
        can_archive=True,
    ),
    config.GENERIC: CrmPreset(
        kind=config.GENERIC,
        label="a generic endpoint",
        base_variable=config.GENERIC_URL,
        settings=config.generic_settings,
        client=GenericClient,
        max_batch=config.MAX_GENERIC_BATCH_SIZE,
        field_names=NameRule(re.compile(r"[A-Za-z_][A-Za-z0-9_]*"), "letters, digits and _"),
        object_names=NameRule(
            re.compile(r"[A-Za-z0-9_]+(?:[./-][A-Za-z0-9_]+)*"), "a path such as videos"
        ),
    ),
}


def crm_kinds() -> tuple[str, ...]:
    """Every CRM target kind, in the table's order."""
    return tuple(PRESETS)


def preset(kind: str) -> CrmPreset:
    """The row of `kind`; ValueError naming the known kinds for any other."""
    found = PRESETS.get(kind)
    if found is None:
        raise ValueError(
            f"unknown CRM target kind {kind!r}; expected one of {', '.join(crm_kinds())}"
        )
    return found


def configured_kinds(environ: Mapping[str, str] = os.environ) -> tuple[str, ...]:
    """Targets whose base variable is set (its value is not read here)."""
    return tuple(
        kind for kind, row in PRESETS.items() if environ.get(row.base_variable, "").strip()
    )


def load_settings(kind: str, environ: Mapping[str, str] = os.environ) -> CrmSettings:
    """The settings of one target, secrets included; call at run time only."""
    return preset(kind).settings(environ)


def can_archive(client: CrmClient) -> TypeGuard[ArchivingClient]:
    """Whether the client's target archives records, as its preset declares."""
    return preset(client.service).can_archive
