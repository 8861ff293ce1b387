"""apply_mapping end to end on in-memory records: scope policies (null, skip, reject), required
fields, all-or-nothing records, duplicate keys, previous snapshots, column order, and the
property that arbitrary JSON-like input is rejected record by record, never raised."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.transforms.builders import ALL_SCOPES, BASIC_ONLY, PROFILE, VIDEO, mapping_text, profile
from transforms import RejectedRecord, apply_mapping, load_mapping, parse_mapping

STATS_FIELD = "  - source: follower_count\n    target: followers\n    type: integer\n"


def _stats_mapping(policy: str | None, extra: str = "") -> str:
    line = f"    when_scope_missing: {policy}\n" if policy else ""
    return mapping_text(STATS_FIELD + line + extra)


SCOPE_CASES = [
    # default policy: the field is emitted empty and the scope reported
    (None, [{"id_out": PROFILE["open_id"], "followers": None}], 0),
    # "null" written out (quoted, or as YAML null) behaves the same
    ('"null"', [{"id_out": PROFILE["open_id"], "followers": None}], 0),
    ("null", [{"id_out": PROFILE["open_id"], "followers": None}], 0),
    # skip: the field is left out so a CRM keeps its current value
    ("skip", [{"id_out": PROFILE["open_id"]}], 0),
    # reject: the whole record is rejected
    ("reject", [], 1),
]


@pytest.mark.parametrize(("policy", "records", "rejected"), SCOPE_CASES)
def test_scope_missing_policies(policy: str | None, records: list[dict], rejected: int) -> None:
    result = apply_mapping(parse_mapping(_stats_mapping(policy)), [profile()], BASIC_ONLY)
    assert result.records == records
    assert len(result.rejected) == rejected
    if rejected:
        assert "scope 'user.info.stats' was not granted" in result.rejected[0].reason
        assert result.rejected[0].field == "followers"
        assert result.missing_scopes == {}
    else:
        assert result.missing_scopes == {"user.info.stats": ("followers",)}


@pytest.mark.parametrize("policy", [None, "skip", "reject"])
def test_granted_scope_maps_normally(policy: str | None) -> None:
    result = apply_mapping(parse_mapping(_stats_mapping(policy)), [profile()], ALL_SCOPES)
    assert result.records == [{"id_out": PROFILE["open_id"], "followers": 125000}]
    assert result.missing_scopes == {}


def test_scope_missing_ignores_the_value_even_when_present() -> None:
    # The extractor should not have the value without the scope; if it does, it is not trusted.
    result = apply_mapping(parse_mapping(_stats_mapping(None)), [profile()], frozenset())
    assert result.rejected[0].reason.startswith("id_out: scope 'user.info.basic' was not granted")


def test_explicit_scope_overrides_the_inferred_one() -> None:
    field = "  - source: connection_name\n    target: c\n    type: string\n    scope: video.list\n"
    result = apply_mapping(parse_mapping(mapping_text(field)), [profile()], BASIC_ONLY)
    assert result.records == [{"id_out": PROFILE["open_id"], "c": None}]
    assert result.missing_scopes == {"video.list": ("c",)}


def test_template_placeholders_add_their_scopes() -> None:
    field = (
        "  - source: open_id\n    target: link\n    type: string\n"
        '    transforms: [{template: "https://www.tiktok.com/@{username}"}]\n'
    )
    result = apply_mapping(parse_mapping(mapping_text(field)), [profile()], BASIC_ONLY)
    assert result.missing_scopes == {"user.info.profile": ("link",)}


def test_computed_fields_follow_the_scopes_of_their_inputs() -> None:
    computed = (
        "  - target: growth\n    type: integer\n"
        "    expression: coalesce(follower_count - previous.follower_count, 0)\n"
        "    when_scope_missing: skip\n"
    )
    result = apply_mapping(
        parse_mapping(mapping_text("", computed=computed)), [profile()], BASIC_ONLY
    )
    assert result.records == [{"id_out": PROFILE["open_id"]}]
    assert result.missing_scopes == {"user.info.stats": ("growth",)}


def test_pipeline_fields_need_no_scope() -> None:
    field = "  - source: connection_name\n    target: c\n    type: string\n"
    result = apply_mapping(parse_mapping(mapping_text(field)), [profile()], BASIC_ONLY)
    assert result.records == [{"id_out": PROFILE["open_id"], "c": "ana-main"}]


REQUIRED = (
    "  - source: display_name\n    target: name\n    type: string\n    required: true\n"
    "    transforms: [strip]\n"
)


@pytest.mark.parametrize(
    "record",
    [
        # a missing required field
        {k: v for k, v in PROFILE.items() if k != "display_name"},
        # a null required field
        profile(display_name=None),
    ],
)
def test_required_field_missing_rejects(record: dict[str, Any]) -> None:
    result = apply_mapping(parse_mapping(mapping_text(REQUIRED)), [record], ALL_SCOPES)
    assert result.records == []
    (rejected,) = result.rejected
    assert rejected == RejectedRecord(
        key=(PROFILE["open_id"],),
        reason="name: required, but source field 'display_name' is missing or null",
        field="name",
        record=record,
    )
    assert rejected.error_class == "validation"


def test_required_field_without_its_scope_rejects() -> None:
    field = "  - source: username\n    target: u\n    type: string\n    required: true\n"
    result = apply_mapping(parse_mapping(mapping_text(field)), [profile()], BASIC_ONLY)
    assert "scope 'user.info.profile' was not granted and the field is required" in (
        result.rejected[0].reason
    )


def test_rejected_records_are_never_partially_emitted() -> None:
    fields = STATS_FIELD + "  - source: display_name\n    target: name\n    type: string\n"
    good, bad = profile(open_id="good"), profile(open_id="bad", follower_count="lots")
    result = apply_mapping(parse_mapping(mapping_text(fields)), [bad, good], ALL_SCOPES)
    assert [record["id_out"] for record in result.records] == ["good"]
    (rejected,) = result.rejected
    assert rejected.key == ("bad",)
    assert rejected.field == "followers"
    assert "cannot cast str 'lots' to integer (source field 'follower_count')" in rejected.reason
    assert rejected.record is bad


def test_reason_never_carries_a_long_value_in_full() -> None:
    result = apply_mapping(
        parse_mapping(mapping_text(STATS_FIELD)), [profile(follower_count="9x" * 5000)], ALL_SCOPES
    )
    reason = result.rejected[0].reason
    assert "str of length 10000" in reason and len(reason) < 300


def test_unknown_extra_keys_are_tolerated() -> None:
    record = profile(brand_new_tiktok_field={"x": 1}, another=[1, 2])
    result = apply_mapping(parse_mapping(mapping_text(STATS_FIELD)), [record], ALL_SCOPES)
    assert result.records == [{"id_out": PROFILE["open_id"], "followers": 125000}]


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        # a dotted path reads into nested objects
        (profile(connection={"name": "ana"}), "ana"),
        # a missing or null parent gives null
        (profile(), None),
        (profile(connection=None), None),
    ],
)
def test_dotted_source_paths(record: dict[str, Any], expected: str | None) -> None:
    field = "  - source: connection_name.name\n    target: c\n    type: string\n"
    record = {**record, "connection_name": record.get("connection")}
    result = apply_mapping(parse_mapping(mapping_text(field)), [record], ALL_SCOPES)
    assert result.records[0]["c"] == expected


def test_dotted_path_through_a_scalar_rejects() -> None:
    field = "  - source: connection_name.name\n    target: c\n    type: string\n"
    result = apply_mapping(parse_mapping(mapping_text(field)), [profile()], ALL_SCOPES)
    assert "connection_name is str 'ana-main', not an object" in result.rejected[0].reason


def test_non_dict_records_are_rejected() -> None:
    result = apply_mapping(
        parse_mapping(mapping_text("")), [["not", "a", "dict"], profile()], ALL_SCOPES
    )
    assert len(result.records) == 1
    assert result.rejected[0].reason == "record #0 is list of 3 items, expected a mapping"
    assert result.rejected[0].record == {"value": ["not", "a", "dict"]}


def test_duplicate_keys_keep_the_first_record() -> None:
    first, second = profile(display_name="first"), profile(display_name="second")
    field = "  - source: display_name\n    target: name\n    type: string\n"
    result = apply_mapping(parse_mapping(mapping_text(field)), [first, second], ALL_SCOPES)
    assert [record["name"] for record in result.records] == ["first"]
    assert "duplicate key" in result.rejected[0].reason
    assert result.rejected[0].record is second


def test_previous_is_looked_up_by_the_mapped_key() -> None:
    text = mapping_text(
        "",
        computed="  - target: growth\n    type: integer\n"
        "    expression: follower_count - previous.follower_count\n",
    )
    previous = {(PROFILE["open_id"],): profile(follower_count=120000), ("other",): profile()}
    result = apply_mapping(parse_mapping(text), iter([profile()]), ALL_SCOPES, previous)
    assert result.records == [{"id_out": PROFILE["open_id"], "growth": 5000}]


def test_records_follow_the_column_order_of_the_file() -> None:
    text = (
        "version: 1\nname: ordered\nsource: profile\n"
        "target: {kind: warehouse, object: t}\nkey: [a]\n"
        "computed:\n  - {target: c, type: integer, expression: '1 + 1'}\n"
        "fields:\n  - {source: open_id, target: b, type: string}\n"
        "  - {source: open_id, target: a, type: string, required: true}\n"
    )
    mapping = parse_mapping(text)
    assert mapping.columns == (("c", "integer"), ("b", "string"), ("a", "string"))
    assert list(apply_mapping(mapping, [profile()], ALL_SCOPES).records[0]) == ["c", "b", "a"]


JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(["12", "1e999", "nan", "2024-01-01T00:00:00Z", "true", "", " x "])
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


_MISSING = object()


def _mutate(base: dict[str, Any], changes: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    record = {**extra, **base}
    for name, value in changes.items():
        if value is _MISSING:
            record.pop(name, None)
        else:
            record[name] = value
    return record


def _records(base: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Realistic records with a few fields replaced by arbitrary JSON values, dropped, or added."""
    changes = st.dictionaries(
        st.sampled_from(sorted(base)), JSON_VALUES | st.just(_MISSING), max_size=4
    )
    extra = st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=2)
    return st.builds(_mutate, st.just(base), changes, extra)


SHIPPED = "pipelines/mappings"
MAPPINGS = [
    (load_mapping(f"{SHIPPED}/{name}.yaml"), base)
    for name, base in [
        ("warehouse_contacts", PROFILE),
        ("hubspot_contacts", PROFILE),
        ("salesforce_contacts", PROFILE),
        ("warehouse_videos", VIDEO),
        ("generic_videos", VIDEO),
    ]
]


@st.composite
def _batches(draw: st.DrawFn) -> tuple[Any, list[Any], dict[tuple[Any, ...], Any], frozenset[str]]:
    mapping, base = draw(st.sampled_from(MAPPINGS))
    records = draw(st.lists(st.one_of(_records(base), _records(base), JSON_VALUES), max_size=4))
    for position, record in enumerate(records):
        # Distinct ids, so most records are not just duplicates of the first one.
        for name in ("open_id", "id"):
            if isinstance(record, dict) and name in base and record.get(name) == base[name]:
                record[name] = f"{base[name]}-{position}"
    previous = draw(st.lists(_records(base), max_size=2))
    snapshots = {
        (record[name],): record
        for record in previous
        for name in ("open_id", "id")
        if isinstance(record.get(name), str)
    }
    # Every scope half the time, so plenty of records get past the key field's scope.
    some_scopes = st.sets(st.sampled_from(sorted(ALL_SCOPES))).map(frozenset)
    scopes = draw(st.just(ALL_SCOPES) | some_scopes)
    return mapping, records, snapshots, scopes


@settings(max_examples=100, deadline=None)
@given(_batches())
def test_apply_mapping_never_raises_on_json_like_records(
    batch: tuple[Any, list[Any], dict[tuple[Any, ...], Any], frozenset[str]],
) -> None:
    mapping, records, snapshots, scopes = batch
    result = apply_mapping(mapping, records, scopes, snapshots)
    assert len(result.records) + len(result.rejected) == len(records)
    for record in result.records:
        assert set(record) <= {name for name, _type in mapping.columns}
        assert all(record[name] is not None for name in mapping.key)
    for rejected in result.rejected:
        assert rejected.reason and len(rejected.reason) < 1000
