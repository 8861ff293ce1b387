"""Every field transform, run through parse_mapping + apply_mapping on one profile record:
the value each step produces, the records it rejects, and the load errors of malformed steps."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.transforms.builders import ALL_SCOPES, mapping_text, profile
from transforms import MappingError, apply_mapping, parse_mapping


def _map_one(
    source: str, transforms: str, value: Any, type_name: str = "string", **record: Any
) -> Any:
    text = mapping_text(
        f"  - source: {source}\n    target: out\n    type: {type_name}\n"
        f"    transforms: {transforms}\n"
    )
    result = apply_mapping(parse_mapping(text), [profile(**{source: value}, **record)], ALL_SCOPES)
    assert not result.rejected, result.rejected
    return result.records[0]["out"]


CASES = [
    # strip removes surrounding whitespace, lowercase/uppercase change case
    ("display_name", "[strip]", "  Ana  ", "Ana"),
    ("display_name", "[lowercase]", "Ana", "ana"),
    ("display_name", "[uppercase]", "Ana", "ANA"),
    # steps run in order: strip, then truncate to 3 characters
    ("display_name", "[strip, {truncate: 3}]", "  Ana Creates", "Ana"),
    # truncate leaves short strings alone and counts characters, not bytes
    ("display_name", "[{truncate: 10}]", "Ana", "Ana"),
    ("display_name", "[{truncate: 2}]", "élan", "él"),
    # null passes through text steps untouched
    ("display_name", "[strip, lowercase, {truncate: 3}]", None, None),
    # default fills null and missing values only, not empty strings
    ("display_name", '[{default: "unknown"}]', None, "unknown"),
    ("display_name", '[{default: "unknown"}]', "", ""),
    ("display_name", '[{default: "unknown"}]', "Ana", "Ana"),
    # replace swaps every occurrence
    ("display_name", '[{replace: {old: " ", new: "_"}}]', "a b c", "a_b_c"),
    # map looks values up as text, so booleans meet the YAML keys "true"/"false"
    ("is_verified", '[{map: {"true": "Yes", "false": "No"}}]', True, "Yes"),
    ("is_verified", '[{map: {"true": "Yes", "false": "No"}}]', False, "No"),
    # unquoted YAML booleans and numbers as map keys work too
    ("is_verified", "[{map: {true: 'Y', false: 'N'}}]", False, "N"),
    ("display_name", "[{map: {'1': one}}]", "1", "one"),
    # values missing from a map pass through unchanged
    ("display_name", "[{map: {a: b}}]", "zzz", "zzz"),
    # map then default: blank becomes null becomes the fallback
    ("display_name", '[strip, {map: {"": null}}, {default: "n/a"}]', "   ", "n/a"),
    # date_format turns epoch seconds, ISO text or datetimes into text
    ("synced_at", '[{date_format: "%Y-%m-%d"}]', 1700000000, "2023-11-14"),
    ("synced_at", '[{date_format: "%Y-%m"}]', "2024-03-01T10:00:00Z", "2024-03"),
    ("synced_at", '[{date_format: "%H:%M"}]', datetime(2024, 1, 1, 9, 5, tzinfo=UTC), "09:05"),
    ("synced_at", '[{date_format: "%Y"}]', None, None),
]


@pytest.mark.parametrize(("source", "transforms", "value", "expected"), CASES)
def test_transform_output(source: str, transforms: str, value: Any, expected: Any) -> None:
    assert _map_one(source, transforms, value) == expected


def test_template_fills_placeholders_from_the_source_record() -> None:
    template = '[{template: "https://www.tiktok.com/@{username}?n={follower_count}"}]'
    value = _map_one("username", template, "ana.creates")
    assert value == "https://www.tiktok.com/@ana.creates?n=125000"


def test_template_with_a_missing_placeholder_gives_null() -> None:
    template = '[{template: "https://www.tiktok.com/@{username}"}]'
    assert _map_one("username", template, None) is None


def test_template_keeps_literal_braces() -> None:
    assert _map_one("username", '[{template: "{{x}}-{username}"}]', "ana") == "{x}-ana"


def test_default_then_cast_gives_typed_value() -> None:
    assert _map_one("follower_count", "[{default: 0}]", None, "integer") == 0


REJECTED = [
    # a text step on a number rejects the record and names the step and the value type
    ("follower_count", "[strip]", 5, "'strip' expects a string, got int 5"),
    # date_format on something that is no date
    ("display_name", '[{date_format: "%Y"}]', "soon", "cannot cast str 'soon' to datetime"),
    # a template value that cannot be text (a list)
    ("username", '[{template: "@{username}"}]', ["a"], "template: cannot cast list"),
]


@pytest.mark.parametrize(("source", "transforms", "value", "reason"), REJECTED)
def test_transform_failure_rejects_the_record(
    source: str, transforms: str, value: Any, reason: str
) -> None:
    text = mapping_text(
        f"  - source: {source}\n    target: out\n    type: string\n    transforms: {transforms}\n"
    )
    result = apply_mapping(parse_mapping(text), [profile(**{source: value})], ALL_SCOPES)
    assert result.records == []
    (rejected,) = result.rejected
    assert reason in rejected.reason
    assert rejected.field == "out"


BAD_STEPS = [
    # unknown names get a suggestion
    ("[strp]", "unknown transform 'strp' (did you mean 'strip'?)"),
    ("[{trunc: 3}]", "unknown transform 'trunc'"),
    # steps with an argument need it, plain steps refuse one
    ("[truncate]", "needs an argument"),
    ("[{strip: true}]", "takes no argument"),
    # malformed steps
    ("[{truncate: 3, strip: 1}]", "a mapping with one key"),
    ("[7]", "a mapping with one key"),
    ("[{truncate: 0}]", "positive whole number"),
    ("[{truncate: '3'}]", "positive whole number"),
    ("[{default: null}]", "changes nothing"),
    ("[{replace: {old: a}}]", "exactly the keys 'old' and 'new'"),
    ("[{replace: {old: '', new: b}}]", "non-empty string 'old'"),
    ("[{map: {}}]", "non-empty mapping"),
    ("[{map: {null: x}}]", "use {default: ...}"),
    ("[{date_format: ''}]", "strftime pattern"),
    # templates: only plain source field names, no attribute/index access, no format specs
    ('[{template: "{a.b}"}]', "must be a plain source field name"),
    ('[{template: "{a[0]}"}]', "must be a plain source field name"),
    ('[{template: "{}"}]', "must be a plain source field name"),
    ('[{template: "{username!r}"}]', "format spec or conversion"),
    ('[{template: "{username:>99999}"}]', "format spec or conversion"),
    ('[{template: "{usrname}"}]', "is not a source field (did you mean 'username'?)"),
    ('[{template: "{username"}]', "template is malformed"),
    ("[{template: 5}]", "template needs a string"),
]


@pytest.mark.parametrize(("transforms", "message"), BAD_STEPS)
def test_malformed_steps_are_load_errors(transforms: str, message: str) -> None:
    text = mapping_text(
        f"  - source: username\n    target: out\n    type: string\n    transforms: {transforms}\n"
    )
    with pytest.raises(MappingError) as caught:
        parse_mapping(text, "steps.yaml")
    assert message in str(caught.value)
    assert str(caught.value).startswith("steps.yaml:16: fields[1].transforms[0]")
