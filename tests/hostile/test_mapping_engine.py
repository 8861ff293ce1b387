"""Properties of the mapping engine under hostile records: generated mappings (random fields, types,
transforms, scopes, computed expressions) applied to records full of wrong types, NaN, giant ints,
lone surrogates, megabyte strings and nested junk.

For every batch: `apply_mapping` returns (never raises), each input record is either emitted whole
or rejected with a reason, emitted values have the Python type of their declared column type,
required fields are never empty, and reasons stay short whatever the value.
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime, timedelta
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from tests.hostile import HUGE_TEXT, LONE_SURROGATES, hostile_settings, json_like, scalars
from tests.transforms.builders import ALL_SCOPES, PROFILE, VIDEO, mapping_text, video
from transforms import SOURCE_FIELD_SCOPES, Mapping, apply_mapping, parse_mapping
from transforms.source_fields import FIELD_TYPES

KEY_SOURCE = {"profile": "open_id", "video": "id"}
COMPUTED = {
    "profile": [
        "follower_count - previous.follower_count",
        "likes_count / coalesce(video_count, 1)",
        "round(follower_count * 1.5, 2)",
        "max(following_count, 0) + abs(-likes_count)",
    ],
    "video": [
        "round((like_count + comment_count + share_count) / view_count, 6)",
        "view_count - previous.view_count",
        "coalesce(view_count, 0) * 2",
        "min(duration, width, height) / 0",
        "round(like_count, 2) - -share_count",
    ],
}
# Reasons name the field and show a value's type and first 80 characters, never all of it.
MAX_REASON_CHARS = 1_000
EXPECTED_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "float": (float,),
    "boolean": (bool,),
    "datetime": (datetime,),
    "date": (date,),
    "json": (dict, list),
}


def _transforms(source: str) -> st.SearchStrategy[list[Any]]:
    placeholder = st.sampled_from(sorted(SOURCE_FIELD_SCOPES[source]))
    step = st.one_of(
        st.sampled_from(["strip", "lowercase", "uppercase"]),
        st.integers(min_value=1, max_value=40).map(lambda n: {"truncate": n}),
        st.one_of(st.text(max_size=5), st.integers(), st.booleans()).map(lambda v: {"default": v}),
        placeholder.map(lambda name: {"template": f"https://x.test/@{{{name}}}?q={{{{x}}}}"}),
        st.just({"date_format": "%Y-%m-%d %H:%M:%S"}),
        st.just({"replace": {"old": "a", "new": "'; DROP TABLE x; --"}}),
        st.just({"map": {"true": "Yes", "": None, "12": 13, "1.5": [1, 2]}}),
    )
    return st.lists(step, max_size=3)


def _natural_type(name: str) -> str:
    """The type a careful author would give a source field (most generated fields use it)."""
    if name in ("create_time", "synced_at", "deleted_at"):
        return "datetime"
    if name.endswith("_count") or name in ("duration", "height", "width"):
        return "integer"
    if name.startswith("is_"):
        return "boolean"
    return "string"


@st.composite
def mappings(draw: st.DrawFn) -> Mapping:
    """A valid warehouse mapping with random fields, transforms, scopes and computed fields."""
    source = draw(st.sampled_from(sorted(SOURCE_FIELD_SCOPES)))
    names = sorted(SOURCE_FIELD_SCOPES[source])
    fields: list[dict[str, Any]] = [
        {"source": KEY_SOURCE[source], "target": "k", "type": "string", "required": True}
    ]
    base = PROFILE if source == "profile" else VIDEO
    for index in range(draw(st.integers(min_value=1, max_value=6))):
        name = draw(st.sampled_from(names))
        # Most fields are what a careful author writes, so plenty of records map cleanly.
        if draw(st.sampled_from([True, True, True, False])):
            field = {
                "source": name,
                "target": f"f{index}",
                "type": _natural_type(name),
                "required": base.get(name) is not None and draw(st.booleans()),
                "transforms": draw(_transforms(source)) if _natural_type(name) == "string" else [],
            }
        else:
            required = draw(st.booleans())
            policies = ["null", "reject"] if required else ["null", "reject", "skip"]
            field = {
                "source": name + draw(st.sampled_from(["", ".inner"])),
                "target": f"f{index}",
                "type": draw(st.sampled_from(FIELD_TYPES)),
                "required": required,
                "transforms": draw(_transforms(source)),
                "when_scope_missing": draw(st.sampled_from(policies)),
            }
        fields.append(field)
    computed = [
        {
            "target": f"c{index}",
            "type": draw(st.sampled_from(["float", "float", "integer", "string", "boolean"])),
            "expression": expression,
            "when_scope_missing": draw(st.sampled_from(["null", "reject", "skip"])),
        }
        for index, expression in enumerate(
            draw(st.lists(st.sampled_from(COMPUTED[source]), max_size=3, unique=True))
        )
    ]
    document = {
        "version": 1,
        "name": "hostile",
        "source": source,
        "target": {"kind": "warehouse", "object": "hostile_rows"},
        "key": ["k"],
        "fields": fields,
        "computed": computed,
    }
    # Through JSON first: shared sub-objects would otherwise be dumped as YAML anchors (refused).
    text = yaml.safe_dump(json.loads(json.dumps(document)), sort_keys=False)
    return parse_mapping(text, "generated.yaml")


@st.composite
def batches(draw: st.DrawFn) -> tuple[Mapping, list[Any], dict[Any, Any], frozenset[str]]:
    mapping = draw(mappings())
    base = PROFILE if mapping.source == "profile" else VIDEO
    names = sorted(SOURCE_FIELD_SCOPES[mapping.source])
    key = KEY_SOURCE[mapping.source]
    # Hostile values often, but not always: records that map cleanly must be common too.
    value = st.one_of(json_like, scalars, st.integers(), st.text(max_size=20))

    def record(position: int) -> st.SearchStrategy[Any]:
        overrides = st.dictionaries(st.sampled_from(names), value, max_size=2)
        drop = st.sets(st.sampled_from(names), max_size=1)
        clean = st.tuples(st.just({}), st.just(set()))
        return st.one_of(clean, st.tuples(overrides, drop)).map(
            lambda od: {
                k: v
                for k, v in {**base, key: f"{base[key]}-{position}", **od[0]}.items()
                if k not in od[1]
            }
        )

    size = draw(st.integers(min_value=0, max_value=4))
    records = [draw(st.one_of(record(i), record(i), record(i), json_like)) for i in range(size)]
    previous = {
        (f"{base[key]}-{i}",): draw(st.dictionaries(st.sampled_from(names), scalars, max_size=3))
        for i in range(size)
    }
    some = st.sets(st.sampled_from(sorted(ALL_SCOPES))).map(frozenset)
    scopes = draw(st.sampled_from([ALL_SCOPES, ALL_SCOPES, ALL_SCOPES, None]))
    scopes = scopes if scopes is not None else draw(some)
    return mapping, records, previous, scopes


def _conforms(value: Any, type_name: str) -> bool:
    if value is None:
        return True
    if type_name in ("integer", "float") and isinstance(value, bool):
        return False
    if type_name == "date" and isinstance(value, datetime):
        return False
    if not isinstance(value, EXPECTED_TYPES[type_name]):
        return False
    if type_name == "float":
        return math.isfinite(value)
    if type_name == "datetime":
        return value.utcoffset() == timedelta(0)
    return True


def _skipped(mapping: Mapping, scopes: frozenset[str]) -> set[str]:
    entries = [*mapping.fields, *mapping.computed]
    return {
        entry.target
        for entry in entries
        if entry.scopes - scopes
        and entry.when_scope_missing == "skip"
        and not getattr(entry, "required", False)
    }


@hostile_settings(150)
@given(batches())
def test_hostile_records_are_mapped_whole_or_rejected_with_a_reason(
    batch: tuple[Mapping, list[Any], dict[Any, Any], frozenset[str]],
) -> None:
    mapping, records, previous, scopes = batch
    result = apply_mapping(mapping, records, scopes, previous)

    assert len(result.records) + len(result.rejected) == len(records)
    types = dict(mapping.columns)
    # No partial record: every column is there except the ones skipped for a missing scope.
    expected_columns = set(types) - _skipped(mapping, scopes)
    required = {f.target for f in mapping.fields if f.required}
    for emitted in result.records:
        assert set(emitted) == expected_columns
        for name, value in emitted.items():
            assert _conforms(value, types[name]), (name, types[name], type(value))
        assert all(emitted[name] is not None for name in required)
    targets = set(types)
    for rejected in result.rejected:
        assert isinstance(rejected.reason, str) and rejected.reason
        assert len(rejected.reason) < MAX_REASON_CHARS
        assert rejected.field is None or rejected.field in targets
        assert rejected.error_class == "validation"
        # The original record is kept as it came (a non-dict is wrapped as {"value": ...}).
        assert any(rejected.record is r for r in records) or (
            rejected.key is None and rejected.reason.startswith("record #")
        )


REQUIRED_FIELD = (
    "  - source: title\n    target: title_out\n    type: string\n    required: true\n"
    "    transforms: [strip, {map: {'': null}}]\n"
)


MISSING = object()


@pytest.mark.parametrize(
    "value",
    [
        # the key is absent from the record
        MISSING,
        # null, or text that the transforms turn into null
        None,
        "",
        "   \t\n",
    ],
)
def test_a_missing_required_field_rejects_the_whole_record_with_the_reason(value: Any) -> None:
    mapping = parse_mapping(mapping_text(REQUIRED_FIELD, source="video"))
    record = video(title=value)
    if value is MISSING:
        del record["title"]
    result = apply_mapping(mapping, [record, video(id="other")], ALL_SCOPES)
    assert result.records == [{"id_out": "other", "title_out": "Studio day"}]
    [rejected] = result.rejected
    assert rejected.field == "title_out"
    assert rejected.key == (video()["id"],)
    assert rejected.record is record
    assert "title_out: required" in rejected.reason and "'title'" in rejected.reason


ENGAGEMENT = (
    "  - target: engagement_rate\n    type: float\n"
    '    expression: "round((like_count + comment_count + share_count) / view_count, 6)"\n'
)


@pytest.mark.parametrize(
    ("metrics", "expected"),
    [
        # no views yet: no rate, not an error
        ({"view_count": 0}, None),
        ({"view_count": None}, None),
        ({"view_count": "0"}, None),
        # a null count anywhere: no rate
        ({"like_count": None}, None),
        # numeric text counts as a number
        ({"view_count": "1000", "like_count": 10, "comment_count": 0, "share_count": 0}, 0.01),
        # negative zero views is still zero
        ({"view_count": -0.0}, None),
    ],
)
def test_engagement_rate_with_zero_or_missing_views(metrics: dict, expected: Any) -> None:
    mapping = parse_mapping(mapping_text("", source="video", computed=ENGAGEMENT))
    result = apply_mapping(mapping, [video(**metrics)], ALL_SCOPES)
    assert result.rejected == []
    assert result.records[0]["engagement_rate"] == expected


@pytest.mark.parametrize(
    "metrics",
    [
        # a huge count makes the division overflow a float
        {"like_count": 10**400},
        # NaN and infinity never become a rate
        {"view_count": float("nan")},
        {"like_count": float("inf")},
        # text and booleans are not counts
        {"view_count": "lots"},
        {"share_count": True},
        {"comment_count": HUGE_TEXT},
        {"like_count": LONE_SURROGATES[0]},
    ],
)
def test_engagement_rate_of_unusable_counts_rejects_the_record(metrics: dict) -> None:
    mapping = parse_mapping(mapping_text("", source="video", computed=ENGAGEMENT))
    result = apply_mapping(mapping, [video(**metrics)], ALL_SCOPES)
    assert result.records == []
    [rejected] = result.rejected
    assert rejected.field == "engagement_rate"
    assert "engagement_rate" in rejected.reason and len(rejected.reason) < MAX_REASON_CHARS
