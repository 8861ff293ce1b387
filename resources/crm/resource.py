"""The Dagster resource that opens a CRM client per target, with settings read at run time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from resources.crm.config import (
    GENERIC,
    HUBSPOT,
    SALESFORCE,
    GenericSettings,
    HubSpotSettings,
    SalesforceSettings,
    load_settings,
    target_host,
)
from resources.crm.errors import DemoModeRefused
from resources.crm.generic import GenericClient
from resources.crm.http import MAX_ATTEMPTS, CrmHttp
from resources.crm.hubspot import HubSpotClient
from resources.crm.push import CrmClient
from resources.crm.salesforce import SalesforceClient
from resources.http_base import BACKOFF_CAP_S, MAX_WAIT_S, is_loopback
from resources.settings import MODE_DEMO, MODE_LIVE


def build_client(kind: str, object_name: str, http: CrmHttp, mode: str = MODE_LIVE) -> CrmClient:
    """A client for `kind` with its settings from the environment (MissingCrmSetting if not)."""
    settings = load_settings(kind)
    if mode == MODE_DEMO and not is_loopback(target_host(settings)):
        raise DemoModeRefused(
            f"demo mode never pushes simulated TikTok data to a real {kind} account "
            f"({target_host(settings)}); unset TIKTOK_CRM_SYNC_MODE to push live data, or point "
            "the target at a fake on 127.0.0.1",
            service=kind,
        )
    if kind == HUBSPOT and isinstance(settings, HubSpotSettings):
        return HubSpotClient(settings, object_name, http=http)
    if kind == SALESFORCE and isinstance(settings, SalesforceSettings):
        return SalesforceClient(settings, object_name, http=http)
    if kind == GENERIC and isinstance(settings, GenericSettings):
        return GenericClient(settings, object_name, http=http)
    raise ValueError(f"no CRM client for target kind {kind!r}")


class CrmResource(dg.ConfigurableResource):
    """Retry policy for the CRM clients; credentials come from the environment at run time."""

    max_attempts: int = MAX_ATTEMPTS
    backoff_cap_s: float = BACKOFF_CAP_S
    max_wait_s: float = MAX_WAIT_S
    mode: str = MODE_LIVE

    @contextmanager
    def client(self, kind: str, object_name: str) -> Iterator[CrmClient]:
        http = CrmHttp(
            kind,
            max_attempts=self.max_attempts,
            backoff_cap_s=self.backoff_cap_s,
            max_wait_s=self.max_wait_s,
        )
        try:
            yield build_client(kind, object_name, http, self.mode)
        finally:
            http.close()
