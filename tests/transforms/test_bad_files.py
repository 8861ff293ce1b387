"""Bad mapping files read through load_mapping: every error is a MappingError whose message
starts with ``file:line: field.path:`` and says what to change; unsafe YAML fails fast."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from transforms import MappingError, load_mapping, parse_mapping

GOOD = """\
version: 1
name: creator_contacts
source: profile
target:
  kind: warehouse
  object: crm_contacts
key: [tiktok_open_id]
fields:
  - source: open_id
    target: tiktok_open_id
    type: string
    required: true
  - source: follower_count
    target: followers
    type: integer
computed:
  - target: follower_growth
    type: integer
    expression: follower_count - previous.follower_count
"""
LAST_FIELD = "    type: integer\ncomputed:"

# (old text, new text) applied to GOOD once, expected line, field path, part of the message
EDITS = [
    # a typo in a top-level key: reported as unknown, with a suggestion
    ("fields:", "feilds:", 8, "feilds", "unknown key 'feilds' (did you mean 'fields'?)"),
    # an unknown key inside a field entry
    ("    type: integer\n", "    tpye: integer\n", 15, "fields[1].tpye", "unknown key 'tpye'"),
    # an unknown top-level key
    ("version: 1\n", "version: 1\nowner: data-team\n", 2, "owner", "allowed keys:"),
    # a wrong value type: text where true/false is expected
    ("required: true", "required: 'yes'", 12, "fields[0].required", "expected true or false"),
    # a wrong value type: a mapping where a string is expected
    ("    target: followers", "    target: {name: x}", 14, "fields[1].target", "expected a string"),
    # an unknown type name
    (LAST_FIELD, "    type: intger\ncomputed:", 15, "fields[1].type", "unknown type 'intger'"),
    # a duplicate target name
    ("target: followers", "target: tiktok_open_id", 14, "fields[1].target", "duplicate target"),
    # a key field that is not mapped
    ("key: [tiktok_open_id]", "key: [open_id]", 7, "key[0]", "key field 'open_id' is not"),
    # a key field that is not required
    ("key: [tiktok_open_id]", "key: [followers]", 7, "key[0]", "must be marked required"),
    # a key field that is computed
    ("key: [tiktok_open_id]", "key: [follower_growth]", 7, "key[0]", "key fields must be mapped"),
    # an empty key
    ("key: [tiktok_open_id]", "key: []", 7, "key", "must not be empty"),
    # an unknown source entity
    ("source: profile", "source: profiles", 3, "source", "unknown source 'profiles'"),
    # an unknown source field
    ("source: follower_count", "source: follower_cont", 13, "fields[1].source", "follower_count"),
    # an unknown target kind
    ("kind: warehouse", "kind: mailchimp", 5, "target.kind", "unknown target kind"),
    # a table name the warehouse loader could not create safely
    ("object: crm_contacts", "object: crm contacts;", 6, "target.object", "not a lowercase table"),
    # a mapping name outside [a-z][a-z0-9_]*
    ("name: creator_contacts", "name: Creator-Contacts", 2, "name", "must match [a-z]"),
    # an unsupported version
    ("version: 1", "version: 2", 1, "version", "unsupported version 2"),
    # a required key missing from a field entry
    ("    target: followers\n", "", 13, "fields[1].target", "required key 'target' is missing"),
    # an expression with an unknown name
    ("follower_count - previous", "followers - previous", 19, "computed[0].expression", "unknown"),
    # an expression calling something outside the whitelist
    (
        "expression: follower_count - previous.follower_count",
        "expression: __import__('os').system('x')",
        19,
        "computed[0].expression",
        "is not allowed",
    ),
    # a template placeholder that is not a source field
    (
        LAST_FIELD,
        "    type: integer\n    transforms: [{template: '{usernme}'}]\ncomputed:",
        16,
        "fields[1].transforms[0].template",
        "did you mean 'username'?",
    ),
    # an unknown transform name
    (
        LAST_FIELD,
        "    type: integer\n    transforms: [trim]\ncomputed:",
        16,
        "fields[1].transforms[0]",
        "unknown transform 'trim'",
    ),
    # an unknown scope policy and an unknown scope
    (
        LAST_FIELD,
        "    type: integer\n    when_scope_missing: ignore\ncomputed:",
        16,
        "fields[1].when_scope_missing",
        "expected one of: null, reject, skip",
    ),
    (
        LAST_FIELD,
        "    type: integer\n    scope: user.stats\ncomputed:",
        16,
        "fields[1].scope",
        "unknown scope 'user.stats'",
    ),
    # a required field cannot be skipped
    (
        "    required: true\n",
        "    required: true\n    when_scope_missing: skip\n",
        13,
        "fields[0].when_scope_missing",
        "cannot be skipped",
    ),
    # HubSpot takes strings only
    (
        "kind: warehouse\n  object: crm_contacts",
        "kind: hubspot\n  object: contacts",
        15,
        "fields[1].type",
        "HubSpot property values are strings: use type: string",
    ),
    # a duplicate YAML key
    (
        "name: creator_contacts\n",
        "name: creator_contacts\nname: other\n",
        3,
        "name",
        "duplicate key 'name'",
    ),
    # an explicit Python tag is refused before anything is constructed
    (
        "type: string",
        "type: !!python/object/apply:os.system ['true']",
        11,
        "fields[0].type",
        "YAML tag",
    ),
    # a YAML syntax error
    ("key: [tiktok_open_id]", "key: [tiktok_open_id", 8, "key[0]", "invalid YAML"),
    # two documents in one file
    ("fields:\n", "---\nfields:\n", 8, "document", "more than one YAML document"),
]


def _write(tmp_path: Path, content: str | bytes, name: str = "bad_mapping.yaml") -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def _assert_error(path: Path, line: int, field_path: str, fragment: str) -> MappingError:
    with pytest.raises(MappingError) as caught:
        load_mapping(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:{line}: {field_path}: "), message
    assert fragment in message, message
    assert caught.value.filename == str(path) and caught.value.line == line
    return caught.value


def test_the_good_file_loads(tmp_path: Path) -> None:
    assert load_mapping(_write(tmp_path, GOOD)).name == "creator_contacts"


@pytest.mark.parametrize(("old", "new", "line", "field_path", "fragment"), EDITS)
def test_bad_file(
    tmp_path: Path, old: str, new: str, line: int, field_path: str, fragment: str
) -> None:
    assert GOOD.count(old) >= 1
    _assert_error(_write(tmp_path, GOOD.replace(old, new, 1)), line, field_path, fragment)


def test_typo_reports_the_unknown_key_before_the_missing_one(tmp_path: Path) -> None:
    error = _assert_error(_write(tmp_path, GOOD.replace("fields:", "feilds:")), 8, "feilds", "")
    assert f"{tmp_path / 'bad_mapping.yaml'}:1: fields: required key 'fields' is missing" in str(
        error
    )


BILLION_LAUGHS = """\
version: 1
name: lol
lol0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
lol1: &a1 [*a0, *a0, *a0, *a0, *a0, *a0, *a0, *a0, *a0, *a0]
lol2: &a2 [*a1, *a1, *a1, *a1, *a1, *a1, *a1, *a1, *a1, *a1]
lol3: &a3 [*a2, *a2, *a2, *a2, *a2, *a2, *a2, *a2, *a2, *a2]
lol4: &a4 [*a3, *a3, *a3, *a3, *a3, *a3, *a3, *a3, *a3, *a3]
lol5: &a5 [*a4, *a4, *a4, *a4, *a4, *a4, *a4, *a4, *a4, *a4]
lol6: &a6 [*a5, *a5, *a5, *a5, *a5, *a5, *a5, *a5, *a5, *a5]
lol7: &a7 [*a6, *a6, *a6, *a6, *a6, *a6, *a6, *a6, *a6, *a6]
lol8: &a8 [*a7, *a7, *a7, *a7, *a7, *a7, *a7, *a7, *a7, *a7]
"""


def test_billion_laughs_fails_fast(tmp_path: Path) -> None:
    started = time.perf_counter()
    _assert_error(_write(tmp_path, BILLION_LAUGHS), 3, "lol0", "YAML anchors (&a0) are not allowed")
    assert time.perf_counter() - started < 1


def test_aliases_are_refused(tmp_path: Path) -> None:
    # An alias to an undefined anchor still names the alias, its line and where it sits.
    text = GOOD.replace("key: [tiktok_open_id]", "key: *the_key")
    _assert_error(_write(tmp_path, text), 7, "key", "YAML aliases (*the_key) are not allowed")


def test_non_mapping_yaml(tmp_path: Path) -> None:
    _assert_error(_write(tmp_path, "- version: 1\n- name: x\n"), 1, "document", "got a list")


@pytest.mark.parametrize(
    "content",
    [
        # nothing at all
        "",
        # only comments and blank lines
        "# TODO: write the mapping\n\n",
        # an empty document marker
        "---\n",
    ],
)
def test_empty_file(tmp_path: Path, content: str) -> None:
    _assert_error(_write(tmp_path, content), 1, "document", "the file is empty")


def test_oversize_file(tmp_path: Path) -> None:
    padding = "# " + "x" * 1000 + "\n"
    content = GOOD + padding * 1100
    _assert_error(_write(tmp_path, content), 1, "document", "over the 1048576-byte limit")
    with pytest.raises(MappingError, match=r"^big\.yaml:1: document: the file is \d+ bytes"):
        parse_mapping(content, "big.yaml")


def test_non_utf8_file(tmp_path: Path) -> None:
    content = GOOD.replace("name: creator_contacts", "name: caf\xe9").encode("latin-1")
    _assert_error(_write(tmp_path, content), 2, "document", "not valid UTF-8")


def test_missing_file(tmp_path: Path) -> None:
    _assert_error(tmp_path / "nope.yaml", 1, "document", "cannot read the file")


def test_deep_nesting_is_refused(tmp_path: Path) -> None:
    content = GOOD + "description: " + "[" * 60 + "]" * 60 + "\n"
    _assert_error(_write(tmp_path, content), 20, "description" + "[0]" * 40, "nest deeper")


def test_too_many_values_are_refused(tmp_path: Path) -> None:
    content = GOOD.replace("fields:", "description: [" + "1," * 60_000 + "1]\nfields:")
    with pytest.raises(MappingError) as caught:
        load_mapping(_write(tmp_path, content))
    assert str(caught.value).startswith(f"{tmp_path / 'bad_mapping.yaml'}:8: description[")
    assert "more than 50000 YAML values" in str(caught.value)


def test_mapping_error_attributes() -> None:
    with pytest.raises(MappingError) as caught:
        parse_mapping(GOOD.replace(LAST_FIELD, "    type: intger\ncomputed:"))
    error = caught.value
    assert (error.filename, error.line, error.path) == ("<string>", 15, ("fields", 1, "type"))
    assert str(error) == (
        "<string>:15: fields[1].type: unknown type 'intger' (did you mean 'integer'?) "
        "(expected one of: boolean, date, datetime, float, integer, json, string)"
    )


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_gives_a_mapping_or_a_mapping_error(text: str) -> None:
    try:
        parse_mapping(text, "fuzz.yaml")
    except MappingError as err:
        assert str(err).startswith("fuzz.yaml:")


YAML_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
GOOD_DATA = yaml.safe_load(GOOD)


def _replace_at(data: Any, path: list[Any], value: Any) -> Any:
    if not path or not isinstance(data, dict | list) or not data:
        return value
    index = path[0] % len(data)
    copied = dict(data) if isinstance(data, dict) else list(data)
    slot = list(copied)[index] if isinstance(copied, dict) else index
    copied[slot] = _replace_at(copied[slot], path[1:], value)
    return copied


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=20), max_size=4), YAML_VALUES)
def test_any_value_anywhere_gives_a_mapping_or_a_mapping_error(path: list[int], value: Any) -> None:
    text = yaml.safe_dump(_replace_at(GOOD_DATA, path, value), sort_keys=False)
    try:
        parse_mapping(text, "fuzz.yaml")
    except MappingError as err:
        assert re.match(r"fuzz\.yaml:\d+: [^\n]+: ", str(err)), str(err)
