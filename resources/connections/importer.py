"""Register connections from existing tokens: a YAML list, validated before anything is stored.

For teams moving from another tool, and for scripted setups. Every problem names the entry and the
field, never a token's text; a bad file stores nothing. An entry without `open_id` or `scopes`
is completed by one refresh at import (TikTok's token response names both; the refresh rotates the
refresh token, so the old tool must stop using it). Without `expires_in` the access token counts as
expired, so the first sync refreshes it and learns the real lifetimes.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from resources.connections import audit
from resources.connections.audit import AuditLog
from resources.connections.lifecycle import RegistrationRefused, check_new_grant
from resources.connections.store import ConnectionStore, validate_name
from resources.tiktok.apps import DEFAULT_APP, DEMO_APP, MissingSecret, app_env_names, load_app
from resources.tiktok.errors import TikTokError
from resources.tiktok.oauth import OAuthClient, TokenGrant
from resources.tiktok.scopes import BASIC, SUPPORTED_SCOPES, parse_scopes

REQUIRED_FIELDS = ("name", "access_token", "refresh_token")
OPTIONAL_FIELDS = ("open_id", "scopes", "expires_in", "refresh_expires_in", "app")
KNOWN_SCOPES = frozenset({*SUPPORTED_SCOPES, "video.publish", "video.upload"})
# Without `refresh_expires_in`: the shorter documented lifetime (tiktok-api.md 1.5); the first
# refresh replaces it with TikTok's own figure.
ASSUMED_REFRESH_EXPIRES_IN = 15_552_000
_FIELD_NAME = re.compile(r"[A-Za-z_]{1,40}")


class ImportFileError(ValueError):
    """The file was refused whole; `problems` lists each entry and field."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.problems = problems
        listed = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"{path}: nothing was imported:\n{listed}")


@dataclass(frozen=True)
class ImportEntry:
    label: str  # "entry 2 (creator-b)", for messages
    name: str
    app: str
    open_id: str | None
    scopes: frozenset[str] | None
    expires_in: int
    refresh_expires_in: int
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)


def read_entries(path: Path, environ: Mapping[str, str]) -> list[ImportEntry]:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ImportFileError(str(path), [f"cannot read the file: {err.strerror}"]) from err
    except yaml.YAMLError as err:
        # Only the position: YAML's own message quotes the line, which may hold a token.
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or "invalid YAML"
        raise ImportFileError(str(path), [f"not valid YAML{where}: {problem}"]) from None
    if not isinstance(document, list) or not document:
        raise ImportFileError(
            str(path), ["the file must be a YAML list of connections (see docs/connections.md)"]
        )
    entries, problems = [], []
    for index, raw in enumerate(document, start=1):
        entry, found = _entry(index, raw, environ)
        problems += found
        if entry is not None:
            entries.append(entry)
    names = [entry.name for entry in entries]
    problems += [
        f"{entry.label}: field `name`: {entry.name!r} appears more than once in the file"
        for entry in entries
        if names.count(entry.name) > 1
    ]
    if problems:
        raise ImportFileError(str(path), problems)
    return entries


def _entry(index: int, raw: object, environ: Mapping[str, str]) -> tuple[ImportEntry | None, list]:
    if not isinstance(raw, dict):
        return None, [f"entry {index}: must be a mapping with name, access_token, refresh_token"]
    name = raw.get("name")
    label = f"entry {index}" + (f" ({name})" if isinstance(name, str) else "")
    problems = [
        # A key that is not a plain word is not shown: it may be a token pasted in the wrong place.
        f"{label}: field `{key if _FIELD_NAME.fullmatch(str(key)) else '?'}`: unknown field "
        f"(known: {', '.join((*REQUIRED_FIELDS, *OPTIONAL_FIELDS))})"
        for key in raw
        if key not in (*REQUIRED_FIELDS, *OPTIONAL_FIELDS)
    ]
    problems += [f"{label}: field `{key}`: required" for key in REQUIRED_FIELDS if not raw.get(key)]

    def check(key: str, test: Callable[[object], bool], rule: str) -> None:
        if raw.get(key) is not None and not test(raw[key]):
            problems.append(f"{label}: field `{key}`: {rule}")

    check(
        "name",
        lambda v: isinstance(v, str) and _valid_name(v),
        "1-63 lowercase letters, "
        "digits, '-' or '_' starting with a letter or digit (it becomes the partition key)",
    )
    for key in ("access_token", "refresh_token", "open_id"):
        check(
            key,
            lambda v: isinstance(v, str) and v.strip() == v and " " not in v,
            "must be a string without spaces (quote it in YAML)",
        )
    for key, low in (("expires_in", 0), ("refresh_expires_in", 1)):
        check(
            key,
            lambda v, low=low: type(v) is int and v >= low,
            f"must be a whole number of seconds >= {low}",
        )
    check(
        "scopes",
        _valid_scopes,
        f"a list or comma-separated string of {', '.join(sorted(KNOWN_SCOPES))}",
    )
    app = raw.get("app") or DEFAULT_APP
    app_problem = _app_problem(app, environ)
    if app_problem:
        problems.append(f"{label}: field `app`: {app_problem}")
    if problems:
        return None, problems
    scopes = parse_scopes(raw["scopes"]) | {BASIC} if raw.get("scopes") else None
    return ImportEntry(
        label=label,
        name=raw["name"],
        app=app,
        open_id=raw.get("open_id"),
        scopes=scopes,
        expires_in=raw.get("expires_in") or 0,
        refresh_expires_in=raw.get("refresh_expires_in") or ASSUMED_REFRESH_EXPIRES_IN,
        access_token=raw["access_token"],
        refresh_token=raw["refresh_token"],
    ), []


def _valid_name(value: str) -> bool:
    try:
        validate_name(value)
    except ValueError:
        return False
    return True


def _valid_scopes(value: object) -> bool:
    if not isinstance(value, str | list) or (
        isinstance(value, list) and not all(isinstance(v, str) for v in value)
    ):
        return False
    return parse_scopes(value) <= KNOWN_SCOPES


def _app_problem(app: object, environ: Mapping[str, str]) -> str | None:
    if not isinstance(app, str):
        return "must be an app name such as default or sandbox"
    try:
        app_env_names(app)
        if app != DEMO_APP:
            load_app(app, environ)
    except (ValueError, MissingSecret) as err:
        return str(err)
    return None


@dataclass
class ImportResult:
    imported: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # one problem per entry not imported


def import_entries(
    entries: list[ImportEntry],
    store: ConnectionStore,
    log: AuditLog,
    *,
    oauth_for: Callable[[str], OAuthClient],
    replace: bool,
    command: str,
    now: Callable[[], float] = time.time,
) -> ImportResult:
    """Store the entries; raises ImportFileError (nothing stored) on any problem found offline.

    Entries completed by a refresh are checked again afterwards; one refused then is reported and
    the others are stored, since a refresh already replaced the tokens the file holds.
    """
    existing = set(store.names(status=None))

    def check(entry: ImportEntry, open_id: str) -> None:
        reconnect = replace and entry.name in existing
        check_new_grant(store, entry.name, entry.app, open_id, reconnect=reconnect)

    problems = []
    for entry in entries:
        try:
            check(entry, entry.open_id or "")
        except RegistrationRefused as err:
            problems.append(f"{entry.label}: {err}")
    known = [(e.app, e.open_id) for e in entries if e.open_id]
    problems += [
        f"{e.label}: field `open_id`: the same TikTok account appears twice in the file"
        for e in entries
        if e.open_id and known.count((e.app, e.open_id)) > 1
    ]
    if problems:
        raise ImportFileError("the import", problems)
    result, grants, seen = ImportResult(), [], set(known)
    for entry in entries:
        grant = TokenGrant(
            open_id=entry.open_id or "",
            scopes=entry.scopes or frozenset(),
            expires_in=entry.expires_in,
            refresh_expires_in=entry.refresh_expires_in,
            issued_at=now(),
            access_token=entry.access_token,
            refresh_token=entry.refresh_token,
        )
        if entry.open_id is None or entry.scopes is None:
            try:
                refreshed = oauth_for(entry.app).refresh(entry.refresh_token)
                grant = dataclasses.replace(refreshed, scopes=entry.scopes or refreshed.scopes)
                if (entry.app, grant.open_id) in seen:
                    raise RegistrationRefused("the same TikTok account appears twice in the file")
                seen.add((entry.app, grant.open_id))
                check(entry, grant.open_id)
            except (TikTokError, MissingSecret, RegistrationRefused) as err:
                result.refused.append(f"{entry.label}: {err}")
                continue
        grants.append((entry.name, entry.app, grant, None))
    store.save_grants(grants)
    for name, app, grant, _ in grants:
        scopes = ",".join(sorted(grant.scopes))
        log.record(name, audit.IMPORTED, command, detail=f"app {app}, scopes {scopes}")
        result.imported.append(name)
    return result
