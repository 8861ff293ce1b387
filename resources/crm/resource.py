"""The Dagster resource that opens a CRM client per target, with settings read at run time."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from resources.crm.client import CrmClient
from resources.crm.errors import DemoModeRefused
from resources.crm.http import MAX_ATTEMPTS, CrmHttp
from resources.crm.presets import preset
from resources.http_base import BACKOFF_CAP_S, MAX_WAIT_S, is_loopback
from resources.settings import MODE_DEMO, MODE_LIVE


def build_client(kind: str, object_name: str, http: CrmHttp, mode: str = MODE_LIVE) -> CrmClient:
    """A client for `kind` with its settings from the environment (MissingCrmSetting if not)."""
    target = preset(kind)
    settings = target.settings(os.environ)
    if mode == MODE_DEMO and not is_loopback(settings.host):
        raise DemoModeRefused(
            f"demo mode never pushes simulated TikTok data to a real {kind} account "
            f"({settings.host}); unset TIKTOK_CRM_SYNC_MODE to push live data, or point "
            "the target at a fake on 127.0.0.1",
            service=kind,
        )
    client = target.client(settings, object_name, http=http)
    if client.service != kind or not 1 <= client.batch_size <= target.max_batch:
        raise ValueError(
            f"the {kind} preset's client must have service {kind!r} and send 1 to "
            f"{target.max_batch} records per request, not {client.service!r} and "
            f"{client.batch_size}"
        )
    return client


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
