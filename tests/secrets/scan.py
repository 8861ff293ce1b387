"""Find canary secrets in files, folders and SQLite databases, without ever printing them.

Every canary is searched in several encodings: raw, its first half (a message cut short),
URL-encoded, JSON-escaped, hex, base64 and URL-safe base64 (at the three byte alignments, so a
canary inside a longer encoded blob is found too) and, for a canary that is itself base64 (a
Fernet key), its decoded bytes. Files are read as bytes; SQLite databases (write-ahead log
included) are also read cell by cell, with zlib-compressed cells (Dagster's snapshots)
decompressed.

    python -m tests.secrets.scan [--canary-env NAME]... [--canaries-file FILE] PATH...

Without options the canaries are the values of the project's secret variables that are set
(SECRET_VARIABLES, every TIKTOK_*_CLIENT_SECRET) and the comma-separated values of
TIKTOK_CRM_SYNC_CANARIES. Prints `where:offset: label (encoding)` per hit, never a value; exits
1 on any hit, 2 when there is nothing to look for.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import os
import re
import shutil
import sqlite3
import sys
import tempfile
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, quote_plus

SECRET_VARIABLES = (
    "TIKTOK_CLIENT_SECRET",
    "TIKTOK_CRM_SYNC_TOKEN_KEYS",
    "HUBSPOT_ACCESS_TOKEN",
    "SALESFORCE_ACCESS_TOKEN",
    "GENERIC_CRM_AUTH_HEADER",
    "GENERIC_CRM_URL",
    "ALERT_WEBHOOK_URL",
)
EXTRA_CANARIES_VARIABLE = "TIKTOK_CRM_SYNC_CANARIES"
# Shorter values would match by chance (and a real secret is never this short).
MIN_CANARY_CHARS = 12
# Encoded fragments shorter than this are too likely to occur by chance.
MIN_PATTERN_BYTES = 10
_SQLITE_MAGIC = b"SQLite format 3\x00"
_APP_SECRET = re.compile(r"TIKTOK_[A-Z0-9_]+_CLIENT_SECRET")
_MULTI_VALUED = {"TIKTOK_CRM_SYNC_TOKEN_KEYS": ",", EXTRA_CANARIES_VARIABLE: ","}


@dataclass(frozen=True)
class Canary:
    label: str  # what the value is (a variable name), shown in reports instead of the value
    value: str


@dataclass(frozen=True)
class Hit:
    where: str  # a file, or file#table.column for a database cell
    offset: int  # byte offset in the file, or the row number of the cell
    label: str
    encoding: str

    def __str__(self) -> str:
        return f"{self.where}:{self.offset}: {self.label} ({self.encoding})"


def _base64_fragments(raw: bytes, name: str, encode: object) -> dict[str, bytes]:
    """The part of the encoding that only the canary's bytes decide, for each alignment."""
    fragments = {}
    for shift in range(3):
        encoded = encode(b"\0" * shift + raw)  # type: ignore[operator]
        start = -(-8 * shift // 6)  # first character made of canary bits only
        end = 8 * (shift + len(raw)) // 6  # past the last such character
        fragments[f"{name}@{shift}"] = encoded[start:end]
    return fragments


def encodings(value: str) -> dict[str, bytes]:
    """Each way the value could be written, as bytes to search for (short ones dropped)."""
    raw = value.encode("utf-8")
    forms = {
        "raw": raw,
        # a message cut short after the first half of a secret still leaks it
        "first-half": value[: max(MIN_CANARY_CHARS, len(value) // 2)].encode("utf-8"),
        "url-encoded": quote(value, safe="").encode(),
        "form-encoded": quote_plus(value).encode(),
        "json-escaped": json.dumps(value)[1:-1].encode(),
        "hex": raw.hex().encode(),
        "HEX": raw.hex().upper().encode(),
        **_base64_fragments(raw, "base64", base64.b64encode),
        **_base64_fragments(raw, "urlsafe-base64", base64.urlsafe_b64encode),
    }
    try:  # a Fernet key is base64 text: its raw 32 bytes are a form too
        decoded = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        if len(decoded) >= 16:
            forms["base64-decoded"] = decoded
    except (binascii.Error, ValueError):
        pass
    unique: dict[bytes, str] = {}
    for name, pattern in forms.items():
        if len(pattern) >= MIN_PATTERN_BYTES:
            unique.setdefault(pattern, name)
    return {name: pattern for pattern, name in unique.items()}


class Scanner:
    def __init__(self, canaries: Iterable[Canary]) -> None:
        self.canaries = [c for c in canaries if c.value]
        short = [c.label for c in self.canaries if len(c.value) < MIN_CANARY_CHARS]
        if short:
            raise ValueError(f"canaries shorter than {MIN_CANARY_CHARS} characters: {short}")
        self._patterns = [
            (canary.label, name, pattern)
            for canary in self.canaries
            for name, pattern in encodings(canary.value).items()
        ]

    def scan_bytes(self, data: bytes, where: str) -> list[Hit]:
        hits = []
        for label, name, pattern in self._patterns:
            offset = data.find(pattern)
            if offset >= 0:
                hits.append(Hit(where, offset, label, name))
        return hits

    def scan_text(self, text: str, where: str) -> list[Hit]:
        return self.scan_bytes(text.encode("utf-8", "surrogatepass"), where)

    def scan_path(self, path: Path) -> list[Hit]:
        """A file (and, for a SQLite database, every cell), or every file under a folder."""
        if path.is_dir():
            files = sorted(child for child in path.rglob("*") if child.is_file())
            return [hit for child in files for hit in self.scan_path(child)]
        if not path.is_file():
            return []
        data = path.read_bytes()
        hits = self.scan_bytes(data, str(path))
        if data.startswith(_SQLITE_MAGIC):
            hits += self.scan_sqlite(path)
        return hits

    def scan_sqlite(self, path: Path) -> list[Hit]:
        """Every cell of every table, read from a copy (so the write-ahead log is applied)."""
        hits = []
        with tempfile.TemporaryDirectory() as folder:
            copy = Path(folder) / path.name
            for suffix in ("", "-wal"):
                if Path(f"{path}{suffix}").exists():
                    shutil.copyfile(f"{path}{suffix}", f"{copy}{suffix}")
            db = sqlite3.connect(copy)
            try:
                for table, column, row, value in _cells(db):
                    for data in _cell_bytes(value):
                        # The offset of a cell hit is its row number.
                        hits += [
                            Hit(hit.where, row, hit.label, hit.encoding)
                            for hit in self.scan_bytes(data, f"{path}#{table}.{column}")
                        ]
            except sqlite3.DatabaseError as err:
                # A file a test damaged on purpose (the settings checks): its raw bytes, which
                # hold every cell's bytes too, were scanned by scan_path.
                print(f"{path}: cells not readable ({err}); scanned as bytes", file=sys.stderr)
            finally:
                db.close()
        return hits

    def scan_paths(self, paths: Iterable[Path]) -> list[Hit]:
        return [hit for path in paths for hit in self.scan_path(path)]


def _cells(db: sqlite3.Connection) -> Iterator[tuple[str, str, int, object]]:
    tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    for table in tables:
        quoted = '"' + table.replace('"', '""') + '"'
        cursor = db.execute(f"SELECT * FROM {quoted}")  # names come from the file itself
        columns = [description[0] for description in cursor.description]
        for number, row in enumerate(cursor, start=1):
            for column, value in zip(columns, row, strict=True):
                yield table, column, number, value


def _cell_bytes(value: object) -> Iterator[bytes]:
    if isinstance(value, str):
        yield value.encode("utf-8", "surrogatepass")
    elif isinstance(value, bytes):
        yield value
        try:
            inflated = zlib.decompress(value)
        except zlib.error:
            return
        yield inflated


def canaries_from_environment(
    environ: Mapping[str, str] = os.environ, names: Sequence[str] | None = None
) -> list[Canary]:
    """The values of the secret variables that are set (each part of multi-valued ones)."""
    if names is None:
        names = [*SECRET_VARIABLES, *sorted(filter(_APP_SECRET.fullmatch, environ))]
        names.append(EXTRA_CANARIES_VARIABLE)
    canaries = []
    for name in dict.fromkeys(names):
        value = environ.get(name, "").strip()
        if not value:
            continue
        separator = _MULTI_VALUED.get(name)
        parts = [part.strip() for part in value.split(separator)] if separator else [value]
        for index, part in enumerate(p for p in parts if p):
            label = f"{name}[{index}]" if separator else name
            canaries.append(Canary(label, part))
            # `Name: value` headers: the value alone is the secret.
            _name, colon, header_value = part.partition(":")
            if name == "GENERIC_CRM_AUTH_HEADER" and colon and header_value.strip():
                canaries.append(Canary(f"{name} value", header_value.strip()))
    return canaries


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.secrets.scan", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("paths", nargs="+", type=Path, help="files or folders to scan")
    parser.add_argument(
        "--canary-env", action="append", default=None, help="variable holding a canary"
    )
    parser.add_argument("--canaries-file", type=Path, help="one canary per line")
    args = parser.parse_args(argv)
    canaries = canaries_from_environment(names=args.canary_env)
    if args.canaries_file:
        lines = args.canaries_file.read_text(encoding="utf-8").splitlines()
        canaries += [
            Canary(f"{args.canaries_file.name} line {n}", line.strip())
            for n, line in enumerate(lines, start=1)
            if line.strip()
        ]
    try:
        scanner = Scanner(canaries)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not scanner.canaries:
        print(
            "error: no canaries: set the secret variables or pass --canaries-file", file=sys.stderr
        )
        return 2
    hits = scanner.scan_paths(args.paths)
    for hit in hits:
        print(hit)
    print(
        f"{len(hits)} hit(s) of {len(scanner.canaries)} canaries in {len(args.paths)} path(s)",
        file=sys.stderr,
    )
    return 1 if hits else 0


if __name__ == "__main__":
    sys.exit(main())
