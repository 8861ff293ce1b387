"""Resources bound from the environment; the embedded SQLite defaults need no configuration."""

import os

import dagster as dg

from resources import settings
from resources.configurable import StateDatabaseResource, TikTokResource, WarehouseResource
from resources.crm.resource import CrmResource
from resources.tiktok.client import DEFAULT_BASE_URL
from resources.tiktok.oauth import DEFAULT_AUTH_BASE_URL


def _url(variable: str, default: str) -> str | dg.EnvVar:
    # A configured URL may hold a password: bind it as EnvVar so the UI shows only the name.
    return dg.EnvVar(variable) if os.environ.get(variable) else default


@dg.definitions
def resources() -> dg.Definitions:
    # Demo mode has its own home and never reads the live URLs (resources.settings).
    live = settings.mode() != settings.MODE_DEMO
    state_variable = "STATE_DATABASE_URL" if live else settings.DEMO_STATE_VARIABLE
    warehouse_variable = "WAREHOUSE_URL" if live else settings.DEMO_WAREHOUSE_VARIABLE
    return dg.Definitions(
        resources={
            "tiktok": TikTokResource(
                api_base_url=os.environ.get("TIKTOK_API_BASE_URL") or DEFAULT_BASE_URL,
                auth_base_url=os.environ.get("TIKTOK_AUTH_BASE_URL") or DEFAULT_AUTH_BASE_URL,
                mode=settings.mode(),
            ),
            "state_db": StateDatabaseResource(
                url=_url(state_variable, settings.state_database_url())
            ),
            "warehouse": WarehouseResource(url=_url(warehouse_variable, settings.warehouse_url())),
            "crm": CrmResource(mode=settings.mode()),
        }
    )
