"""`mapping check` and `mapping preview`: validate mapping files; see what one makes of real rows.

The preview reads a connection's synced rows (and its previous daily snapshot) from the warehouse
and runs the same engine call as the CRM assets; it never calls TikTok and writes nothing.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from resources import settings
from resources.database import make_engine, redact_url
from transforms import Mapping, MappingError, MappingResult, load_mapping

PREVIEW_RECORDS = 3
CELL_CHARS = 40


@click.group()
def mapping() -> None:
    """Declarative mapping files (pipelines/mappings/*.yaml, docs/mappings.md)."""


@mapping.command("check")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
def mapping_check(files: tuple[Path, ...]) -> None:
    """Validate mapping FILES; each error names the file, the line and the field."""
    failed = 0
    for path in files:
        try:
            checked = load_mapping(path)
        except MappingError as err:
            # Plain lines, never wrapped: editors and CI jump to `file:line:`.
            click.echo(f"invalid {err}", err=True)
            failed += 1
            continue
        click.echo(
            f"ok {path}: {checked.source} -> {checked.target.kind} {checked.target.object}, "
            f"key ({', '.join(checked.key)}), {len(checked.fields)} fields, "
            f"{len(checked.computed)} computed"
        )
    if failed:
        raise SystemExit(1)


@mapping.command("preview")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--connection", "connection_name", required=True, help="Connection whose rows to map."
)
@click.option(
    "--limit",
    default=PREVIEW_RECORDS,
    show_default=True,
    type=click.IntRange(min=1),
    help="Records to show.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (every field).")
def mapping_preview(file: Path, connection_name: str, limit: int, as_json: bool) -> None:
    """Map a connection's synced rows through FILE and show the records (TikTok is not called)."""
    try:
        chosen = load_mapping(file)
    except MappingError as err:
        raise click.ClickException(str(err)) from None
    result, source_rows, previous_day = _map_synced_rows(chosen, connection_name)
    records = result.records[:limit]
    if as_json:
        payload = {
            "mapping": chosen.name,
            "connection": connection_name,
            "source_rows": source_rows,
            "previous_snapshot": previous_day,
            "records": records,
            "rejected": [{"key": r.key, "reason": r.reason} for r in result.rejected],
            "missing_scopes": result.missing_scopes,
        }
        click.echo(json.dumps(payload, default=_plain, ensure_ascii=False, indent=2))
        return
    out = Console()
    out.print(_records_table(chosen, records, connection_name))
    out.print(
        f"{len(records)} of {len(result.records)} records from {source_rows} source rows; "
        f"rejected: {len(result.rejected)}; previous snapshot: {previous_day or 'none'}",
        highlight=False,
    )
    for scope, fields in result.missing_scopes.items():
        out.print(f"scope {scope} not granted: {', '.join(fields)} left empty", highlight=False)
    for rejected in result.rejected[:limit]:
        out.print(f"rejected {rejected.key}: {rejected.reason}", highlight=False, markup=False)


def _map_synced_rows(
    chosen: Mapping, connection_name: str
) -> tuple[MappingResult, int, date | None]:
    # Deferred: these pull in Dagster, which `mapping check` does not need.
    from resources.connections.store import ConnectionStore, UnknownConnection
    from resources.warehouse.store import Warehouse
    from services.crm_records import SOURCE_TABLES, mapping_inputs
    from transforms import apply_mapping

    try:
        connection = ConnectionStore(make_engine(settings.state_database_url())).get(
            connection_name
        )
    except (UnknownConnection, ValueError) as err:
        hint = "demo connections exist once `tiktok-crm-sync demo` has run"
        raise click.ClickException(f"{err} ({hint})") from None
    warehouse_url = settings.warehouse_url()
    inputs = mapping_inputs(
        Warehouse(make_engine(warehouse_url)), chosen, connection_name, connection.scopes
    )
    if not inputs.records:
        raise click.ClickException(
            f"no rows of connection {connection_name!r} in {SOURCE_TABLES[chosen.source]} of "
            f"the warehouse {redact_url(warehouse_url)}: sync it first, with "
            "`tiktok-crm-sync demo` for the demo connections, or the daily sync for a live one "
            f"(job tiktok_daily_sync, partition {connection_name}, in the Dagster UI)"
        )
    result = apply_mapping(chosen, inputs.records, connection.scopes, inputs.previous)
    return result, len(inputs.records), inputs.previous_day


def _records_table(chosen: Mapping, records: list[dict[str, Any]], connection_name: str) -> Table:
    """One row per target field, one column per record: mappings are wide, previews short."""
    table = Table(
        title=f"{chosen.name}: {chosen.source} -> {chosen.target.kind} {chosen.target.object} "
        f"(connection {connection_name})"
    )
    table.add_column("field", style="bold")
    table.add_column("type")
    for number, record in enumerate(records, start=1):
        key = ", ".join(str(record.get(name)) for name in chosen.key)
        table.add_column(f"#{number} {_cell(key)}", overflow="fold")
    for name, kind in chosen.columns:
        cells = [_cell(record[name]) if name in record else "(skipped)" for record in records]
        table.add_row(name, kind, *cells)
    return table


def _cell(value: Any) -> str:
    if value is None:
        return "null"
    if value == "":
        return '""'  # an empty text, not a missing value
    text = _plain(value) if isinstance(value, date | datetime) else str(value)
    return text if len(text) <= CELL_CHARS else f"{text[: CELL_CHARS - 1]}…"


def _plain(value: Any) -> str:
    if isinstance(value, date | datetime):
        return value.isoformat()
    return str(value)
