"""The built-in CRM targets' settings from the environment, read at run time.

Each target's preset (`resources.crm.presets`) names its base variable, whose presence configures
the target, and the function here that reads its settings. Secrets are read only then, at run
time, and never logged: a missing or invalid value is a `MissingCrmSetting` naming the variable.
`required` and `secure_url` are the rules every target's settings follow, a new one's included.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

from resources.crm.errors import MissingCrmSetting
from resources.http_base import is_loopback

HUBSPOT, SALESFORCE, GENERIC = "hubspot", "salesforce", "generic"
# The variables whose presence configures each target (see the presets).
HUBSPOT_TOKEN, SALESFORCE_INSTANCE, GENERIC_URL = (
    "HUBSPOT_ACCESS_TOKEN",
    "SALESFORCE_INSTANCE_URL",
    "GENERIC_CRM_URL",
)
DEFAULT_HUBSPOT_BASE_URL = "https://api.hubapi.com"
# sObject Collections upsert needs v46.0+; `created` in UpsertResult also dates from v46.0.
DEFAULT_SALESFORCE_API_VERSION = "62.0"
MIN_SALESFORCE_API_VERSION = 46.0
GENERIC_METHODS = ("POST", "PUT", "PATCH")
DEFAULT_GENERIC_BATCH_SIZE = 100
MAX_GENERIC_BATCH_SIZE = 1_000
_API_VERSION = re.compile(r"^v?([0-9]{2,3}\.[0-9])$")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9-]+$")


class CrmSettings(Protocol):
    """What every target's settings offer, whatever else they hold."""

    @property
    def host(self) -> str:
        """The host the records go to (for the demo guard; never the URL, which may hold a key)."""
        ...


def _host(url: str) -> str:
    return urlsplit(url).hostname or ""


@dataclass(frozen=True)
class HubSpotSettings:
    base_url: str
    access_token: str = field(repr=False)

    @property
    def host(self) -> str:
        return _host(self.base_url)


@dataclass(frozen=True)
class SalesforceSettings:
    instance_url: str
    api_version: str
    access_token: str = field(repr=False)

    @property
    def host(self) -> str:
        return _host(self.instance_url)


@dataclass(frozen=True)
class GenericSettings:
    url: str = field(repr=False)  # may carry a key in its query string
    method: str = "POST"
    batch_size: int = DEFAULT_GENERIC_BATCH_SIZE
    auth_header: tuple[str, str] | None = field(default=None, repr=False)

    @property
    def host(self) -> str:
        return _host(self.url)


def required(environ: Mapping[str, str], variable: str, service: str, what: str) -> str:
    value = environ.get(variable, "").strip()
    if not value:
        raise MissingCrmSetting(
            f"{variable} is not set: set it to {what} to push to {service}",
            service=service,
            variable=variable,
        )
    return value


def secure_url(value: str, variable: str, service: str) -> str:
    """An https URL (plain http only on loopback, where the project's fakes run)."""
    parts = urlsplit(value)
    secure = parts.scheme == "https" or (
        parts.scheme == "http" and is_loopback(parts.hostname or "")
    )
    if not parts.hostname or not secure:
        raise MissingCrmSetting(
            f"{variable} must be an https:// URL (http:// only for 127.0.0.1 or localhost), "
            "so the access token never travels in clear text",
            service=service,
            variable=variable,
        )
    return value


def _base_url(value: str, variable: str, service: str) -> str:
    return secure_url(value, variable, service).rstrip("/")


def hubspot_settings(environ: Mapping[str, str]) -> HubSpotSettings:
    token = required(environ, HUBSPOT_TOKEN, HUBSPOT, "a private app access token")
    base = environ.get("HUBSPOT_BASE_URL", "").strip() or DEFAULT_HUBSPOT_BASE_URL
    return HubSpotSettings(_base_url(base, "HUBSPOT_BASE_URL", HUBSPOT), token)


def salesforce_settings(environ: Mapping[str, str]) -> SalesforceSettings:
    instance = required(
        environ, SALESFORCE_INSTANCE, SALESFORCE, "https://<your domain>.my.salesforce.com"
    )
    token = required(environ, "SALESFORCE_ACCESS_TOKEN", SALESFORCE, "an OAuth access token")
    version = environ.get("SALESFORCE_API_VERSION", "").strip() or DEFAULT_SALESFORCE_API_VERSION
    match = _API_VERSION.match(version)
    if not match or float(match.group(1)) < MIN_SALESFORCE_API_VERSION:
        raise MissingCrmSetting(
            f"SALESFORCE_API_VERSION must look like 62.0 and be at least "
            f"{MIN_SALESFORCE_API_VERSION} (sObject Collections upsert), not {version!r}",
            service=SALESFORCE,
            variable="SALESFORCE_API_VERSION",
        )
    url = _base_url(instance, SALESFORCE_INSTANCE, SALESFORCE)
    return SalesforceSettings(url, match.group(1), token)


def _auth_header(value: str) -> tuple[str, str]:
    """`Name: value`, or a bare value meaning `Authorization: <value>`."""
    name, colon, rest = value.partition(":")
    if colon and _HEADER_NAME.match(name.strip()) and rest.strip():
        return name.strip(), rest.strip()
    return "Authorization", value.strip()


def generic_settings(environ: Mapping[str, str]) -> GenericSettings:
    url = required(environ, GENERIC_URL, GENERIC, "the endpoint that receives the records")
    method = (environ.get("GENERIC_CRM_METHOD", "").strip() or "POST").upper()
    if method not in GENERIC_METHODS:
        raise MissingCrmSetting(
            f"GENERIC_CRM_METHOD must be one of {', '.join(GENERIC_METHODS)}, not {method!r}",
            service=GENERIC,
            variable="GENERIC_CRM_METHOD",
        )
    raw_size = environ.get("GENERIC_CRM_BATCH_SIZE", "").strip() or str(DEFAULT_GENERIC_BATCH_SIZE)
    if not raw_size.isdigit() or not 1 <= int(raw_size) <= MAX_GENERIC_BATCH_SIZE:
        raise MissingCrmSetting(
            f"GENERIC_CRM_BATCH_SIZE must be a whole number from 1 to {MAX_GENERIC_BATCH_SIZE}, "
            f"not {raw_size!r}",
            service=GENERIC,
            variable="GENERIC_CRM_BATCH_SIZE",
        )
    header = environ.get("GENERIC_CRM_AUTH_HEADER", "").strip()
    return GenericSettings(
        url=secure_url(url, GENERIC_URL, GENERIC),
        method=method,
        batch_size=int(raw_size),
        auth_header=_auth_header(header) if header else None,
    )
