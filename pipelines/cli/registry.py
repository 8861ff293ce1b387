"""The connection registry as the CLI opens it: the store (after the preflight), the audit log
and TikTok's OAuth client of an app."""

from __future__ import annotations

import os

from pipelines.cli.preflight import preflight
from resources import settings
from resources.connections.audit import AuditLog
from resources.connections.store import ConnectionStore
from resources.database import make_engine
from resources.tiktok.apps import load_app
from resources.tiktok.client import DEFAULT_BASE_URL
from resources.tiktok.oauth import DEFAULT_AUTH_BASE_URL, OAuthClient


def store() -> ConnectionStore:
    preflight(warehouse=False)
    return ConnectionStore(make_engine(settings.state_database_url()))


def audit() -> AuditLog:
    return AuditLog(make_engine(settings.state_database_url()))


def oauth(app: str) -> OAuthClient:
    return OAuthClient(
        load_app(app),
        api_base_url=os.environ.get("TIKTOK_API_BASE_URL") or DEFAULT_BASE_URL,
        auth_base_url=os.environ.get("TIKTOK_AUTH_BASE_URL") or DEFAULT_AUTH_BASE_URL,
    )
