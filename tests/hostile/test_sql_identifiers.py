"""Identifiers and table names that look like SQL, on real SQLite and real PostgreSQL.

Mapping files with such a table, column, key or mapping name are refused at load (before any
asset exists); the warehouse API refuses them again before any DDL. Each refusal leaves every
table and row exactly as it was (a snapshot of the schema and all rows is compared), while SQL
reserved words that are valid names (`select`, `user`, `order`) are quoted and work, and values
that look like SQL are stored verbatim.
"""

from __future__ import annotations

import pytest

from resources.warehouse.store import Warehouse, WarehouseError
from tests.hostile import SQL_LOOKING, snapshot
from tests.transforms.builders import mapping_text
from transforms import MappingError, parse_mapping

HOSTILE_NAMES = [
    *SQL_LOOKING,
    'crm"; DROP TABLE victim; --',
    "crm`x`",
    "victim--",
    "victim/*",
    "crm_contacts\n",  # `$` in a regex would let a trailing newline through
    "crm_contacts\nDROP TABLE victim",
    "Victim",  # PostgreSQL folds unquoted names: `Victim` and `victim` would meet
    "vid\u00e9os",  # letters outside ASCII, and look-alikes of ASCII letters
    "\uff56ictim",
    "vict\u0456m",
    "\u0131d",
    "x" * 64,  # PostgreSQL would silently cut it to 63 characters
    "1victim",
    "",
    " ",
    "a.b.c",
    ".victim",
    "victim.",
    "public..victim",
]


# Valid names that point into the database's own catalogs or temporary space.
SYSTEM_TABLES = [
    "sqlite_master",
    "sqlite_sequence",
    "temp.victim",
    "pg_catalog.pg_class",
    "pg_temp.victim",
    "pg_toast.victim",
    "information_schema.tables",
]


def _yaml_string(value: str) -> str:
    # A double-quoted YAML scalar keeps newlines, quotes and NUL intact.
    escaped = value.encode("unicode_escape").decode("ascii").replace('"', '\\"')
    return f'"{escaped}"'


PLACES = [
    # where a name goes in a mapping file, and the path the error names
    ("obj", "target.object"),
    ("field", "fields[1].target"),
    # a key must be a field's target: that field is refused first
    ("key", "fields[1].target"),
    ("computed", "computed[0].target"),
    ("name", "name"),
]


def _mapping_with(place: str, name: str) -> str:
    quoted = _yaml_string(name)
    extra = "  - source: display_name\n    target: {t}\n    type: string\n"
    if place == "obj":
        return mapping_text("", obj=quoted)
    if place == "field":
        return mapping_text(extra.format(t=quoted))
    if place == "key":
        return mapping_text(extra.format(t=quoted) + "    required: true\n", key=f"[{quoted}]")
    if place == "name":
        return mapping_text("").replace("name: test_mapping", f"name: {quoted}")
    computed = f"  - target: {quoted}\n    type: integer\n    expression: follower_count\n"
    return mapping_text("", computed=computed)


@pytest.mark.parametrize("name", HOSTILE_NAMES)
@pytest.mark.parametrize(("place", "path"), PLACES)
def test_mapping_files_refuse_sql_looking_names(name: str, place: str, path: str) -> None:
    with pytest.raises(MappingError) as caught:
        parse_mapping(_mapping_with(place, name), "hostile.yaml")
    assert caught.value.path == tuple(
        int(part) if part.isdigit() else part
        for part in path.replace("[", ".").replace("]", "").split(".")
    ), str(caught.value)
    assert (
        "not a valid name" in str(caught.value)
        or "must match" in str(caught.value)
        or ("is not a lowercase table name" in str(caught.value))
    )


@pytest.mark.parametrize("name", ["videos; DROP TABLE x", "Contacts--", "x'y", "a b"])
@pytest.mark.parametrize("kind", ["hubspot", "salesforce", "generic"])
def test_crm_targets_refuse_sql_looking_names(kind: str, name: str) -> None:
    field = f"  - source: display_name\n    target: {_yaml_string(name)}\n    type: string\n"
    for text, path in (
        (mapping_text("", kind=kind, obj=_yaml_string(name)), "target.object"),
        (mapping_text(field, kind=kind, obj="Contact" if kind == "salesforce" else "contacts"), ""),
    ):
        with pytest.raises(MappingError, match=path.replace(".", r"\.") or None):
            parse_mapping(text, "crm.yaml")


@pytest.fixture
def warehouse(warehouse: Warehouse) -> Warehouse:
    """The shared warehouse (SQLite, PostgreSQL) holding a `victim` table with rows that no
    hostile name may touch."""
    victim = warehouse.ensure_table("victim", [("id", "string"), ("n", "integer")], ["id"])
    with warehouse.transaction() as db:
        warehouse.upsert(db, victim, [{"id": "a", "n": 1}, {"id": "b", "n": 2}], ["id"], "setup")
    return warehouse


COLUMNS = [("id", "string"), ("title", "string")]


def test_the_warehouse_refuses_sql_looking_table_names_before_any_ddl(
    warehouse: Warehouse,
) -> None:
    before = snapshot(warehouse)
    for name in [*HOSTILE_NAMES, *SYSTEM_TABLES]:
        with pytest.raises(WarehouseError, match=r"invalid (table|schema) name"):
            warehouse.ensure_table(name, COLUMNS, ["id"])
        with pytest.raises(WarehouseError, match=r"invalid (table|schema) name"):
            warehouse.has_table(name)
        with pytest.raises(WarehouseError, match=r"invalid (table|schema) name"):
            warehouse.count(name)
    assert snapshot(warehouse) == before


def test_the_warehouse_refuses_sql_looking_column_names_before_any_ddl(
    warehouse: Warehouse,
) -> None:
    before = snapshot(warehouse)
    for name in HOSTILE_NAMES:
        # A new table with the column, and an existing table that would gain it.
        for table in ("fresh", "victim"):
            with pytest.raises(WarehouseError, match="invalid column name"):
                warehouse.ensure_table(table, [("id", "string"), (name, "string")], ["id"])
        with pytest.raises(WarehouseError):
            warehouse.ensure_table("fresh", COLUMNS, [name])
        with pytest.raises(WarehouseError, match="unknown column type"):
            warehouse.ensure_table("fresh", [("id", "string"), ("x", name or "?")], ["id"])
    assert snapshot(warehouse) == before


@pytest.mark.parametrize("name", ["title; DROP TABLE victim", 'n" = 0 --', "N"])
def test_rows_with_sql_looking_column_names_write_nothing(warehouse: Warehouse, name: str) -> None:
    table = warehouse.ensure_table("victim", [("id", "string"), ("n", "integer")], ["id"])
    before = snapshot(warehouse)
    rows = [{"id": "c", "n": 3}, {"id": "d", "n": 4, name: "x"}]
    with pytest.raises(WarehouseError), warehouse.transaction() as db:
        warehouse.upsert(db, table, rows, ["id"], "hostile")
    with pytest.raises(WarehouseError, match="has no column"), warehouse.transaction() as db:
        warehouse.upsert(db, table, [{"id": "e", name + "_x": 1}], ["id"], "hostile")
    assert snapshot(warehouse) == before


def test_sql_looking_values_are_stored_verbatim(warehouse: Warehouse) -> None:
    table = warehouse.ensure_table("notes", COLUMNS, ["id"])
    values = [value for value in SQL_LOOKING if "\x00" not in value]
    rows = [{"id": value, "title": value} for value in values]
    with warehouse.transaction() as db:
        warehouse.upsert(db, table, rows, ["id"], "x'); DROP TABLE victim; --")
    stored = {row["id"]: row for row in warehouse.rows("notes")}
    assert {key: row["title"] for key, row in stored.items()} == dict(
        zip(values, values, strict=True)
    )
    assert {row["_load_id"] for row in stored.values()} == {"x'); DROP TABLE victim; --"}
    assert warehouse.count("victim") == 2


@pytest.mark.parametrize(
    ("table", "columns"),
    [
        # SQL keywords are valid names: they are quoted wherever they are written
        ("select", [("from", "string"), ("order", "integer"), ("user", "string")]),
        ("user", [("select", "string"), ("group", "boolean"), ("table", "datetime")]),
        ("public.order", [("where", "string"), ("limit", "float")]),
    ],
)
def test_sql_keywords_as_names_are_quoted(
    warehouse: Warehouse, table: str, columns: list[tuple[str, str]]
) -> None:
    if warehouse.engine.dialect.name == "sqlite" and table.startswith("public."):
        table = table.removeprefix("public.")
    key = [columns[0][0]]
    created = warehouse.ensure_table(table, columns[:1], key)
    with warehouse.transaction() as db:
        warehouse.upsert(db, created, [{key[0]: "k1"}], key, "run-1")
    # A later file adds keyword columns: ALTER TABLE quotes them too; reruns update in place.
    migrated = warehouse.ensure_table(table, columns, key)
    row = {name: None for name, _kind in columns} | {key[0]: "k1"}
    for run in ("run-2", "run-3"):
        with warehouse.transaction() as db:
            warehouse.upsert(db, migrated, [row, {**row, key[0]: "k2"}], key, run)
    assert warehouse.count(table) == 2
    assert warehouse.count("victim") == 2
