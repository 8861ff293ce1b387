"""Hostile mapping files through load_mapping and `tiktok-crm-sync mapping check`: typos (with a
suggestion), unknown keys, wrong YAML types, YAML bombs and unsafe tags, duplicate keys, a
top level that is not a mapping, empty and binary files, and megabyte values.

Each one is a MappingError whose message starts with `file:line: field.path:`, names the right
line and field, stays short, and comes quickly; the CLI prints one `invalid` line per bad file and
exits 1, never a traceback.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from pipelines.cli import main
from tests.hostile import hostile_settings
from transforms import MappingError, load_mapping

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
  - source: display_name
    target: full_name
    type: string
    transforms: [strip, {truncate: 255}]
computed:
  - target: follower_growth
    type: integer
    expression: follower_count - previous.follower_count
"""
# Messages quote values; megabyte values are cut to keep a line readable.
MAX_MESSAGE_CHARS = 2_000
# Every hostile file is refused within this many seconds (the bombs included).
MAX_SECONDS = 2.0


def _write(tmp_path: Path, content: str | bytes, name: str = "bad.yaml") -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", errors="surrogatepass")
    return path


def _refused(path: Path) -> MappingError:
    started = time.perf_counter()
    with pytest.raises(MappingError) as caught:
        load_mapping(path)
    assert time.perf_counter() - started < MAX_SECONDS
    error = caught.value
    first = str(error).split("\n")[0]
    assert first.startswith(f"{path}:{error.line}: "), first[:200]
    assert error.filename == str(path) and error.line >= 1
    assert len(str(error)) < MAX_MESSAGE_CHARS, str(error)[:300]
    assert "Traceback" not in str(error)
    return error


TYPOS = [
    # top-level keys
    ("fields:", "feilds:", "feilds", "did you mean 'fields'?"),
    ("version: 1", "verison: 1", "verison", "did you mean 'version'?"),
    ("source: profile", "sorce: profile", "sorce", "did you mean 'source'?"),
    # keys of target, of a field and of a computed field
    ("  kind: warehouse", "  knd: warehouse", "target.knd", "did you mean 'kind'?"),
    ("    required: true", "    requird: true", "fields[0].requird", "did you mean 'required'?"),
    ("    transforms:", "    tranforms:", "fields[1].tranforms", "did you mean 'transforms'?"),
    ("    expression:", "    expresion:", "computed[0].expresion", "did you mean 'expression'?"),
    # values: a type, a transform, a source field, a target kind, a scope policy
    ("type: string\n    transforms", "type: strng\n    transforms", "fields[1].type", "'string'"),
    ("[strip, {truncate", "[stirp, {truncate", "fields[1].transforms[0]", "did you mean 'strip'?"),
    ("{truncate: 255}", "{truncat: 255}", "fields[1].transforms[1].truncat", "'truncate'?"),
    ("source: display_name", "source: display_nam", "fields[1].source", "'display_name'?"),
    ("kind: warehouse", "kind: warehose", "target.kind", "did you mean 'warehouse'?"),
    ("follower_count - previous", "folower_count - previous", "computed[0].expression", "'follow"),
]


@pytest.mark.parametrize(("good", "bad", "path", "hint"), TYPOS)
def test_typos_are_refused_with_a_suggestion(
    tmp_path: Path, good: str, bad: str, path: str, hint: str
) -> None:
    error = _refused(_write(tmp_path, GOOD.replace(good, bad, 1)))
    assert f": {path}: " in str(error).split("\n")[0]
    assert hint in str(error)


WRONG = [
    # unknown keys, anywhere
    ("version: 1\n", "version: 1\nowner: data-team\n", "owner", "unknown key 'owner'"),
    ("    required: true\n", "    required: true\n    note: x\n", "fields[0].note", "unknown key"),
    # YAML types that are not coerced
    ("version: 1", 'version: "1"', "version", "expected a whole number"),
    ("version: 1", "version: 1.0", "version", "expected a whole number"),
    ("version: 1", "version: true", "version", "expected a whole number"),
    ("name: creator_contacts", "name: 5", "name", "expected a string"),
    ("key: [tiktok_open_id]", "key: tiktok_open_id", "key", "expected a list"),
    ("required: true", 'required: "yes"', "fields[0].required", "expected true or false"),
    ("required: true", "required: 1", "fields[0].required", "expected true or false"),
    ("{truncate: 255}", '{truncate: "255"}', "fields[1].transforms[1].truncate", "whole number"),
    ("{truncate: 255}", "{truncate: 0}", "fields[1].transforms[1].truncate", "positive"),
    ("{truncate: 255}", "{truncate: 2.5}", "fields[1].transforms[1].truncate", "positive"),
    ("[strip, {truncate: 255}]", "strip", "fields[1].transforms", "expected a list"),
    ("target:\n  kind: warehouse\n  object: crm_contacts", "target: crm", "target", "mapping"),
    ("expression: follower_count", "expression: 5\n#", "computed[0].expression", "a string"),
    ("fields:\n", "fields: {}\nx:\n", "fields", "expected a list"),
    # values of the right type that are still wrong
    ("version: 1", "version: 99999999999999999999999", "version", "unsupported version"),
    ("key: [tiktok_open_id]", "key: []", "key", "must not be empty"),
    ("key: [tiktok_open_id]", "key: [full_name]", "key[0]", "must be marked required"),
    # a non-text key
    ("version: 1\n", "version: 1\n1: x\n", "['1']", "keys must be text"),
    ("version: 1\n", "version: 1\n? [a, b]\n: x\n", "document", "plain values"),
]


@pytest.mark.parametrize(("good", "bad", "path", "message"), WRONG)
def test_unknown_keys_and_wrong_types(
    tmp_path: Path, good: str, bad: str, path: str, message: str
) -> None:
    assert good in GOOD
    error = _refused(_write(tmp_path, GOOD.replace(good, bad, 1)))
    assert f": {path}: " in str(error), str(error)
    assert message in str(error)


def _laughs(levels: int) -> str:
    lines = ['lol0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"lol{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


BOMBS = [
    # billion laughs: 9^9 strings if aliases were expanded
    pytest.param(GOOD + _laughs(9), 21, "YAML anchors (&a0) are not allowed", id="laughs"),
    # the bomb first, before anything valid
    pytest.param(_laughs(12) + GOOD, 1, "YAML anchors (&a0) are not allowed", id="laughs-first"),
    # merge keys need an alias too
    pytest.param(
        GOOD.replace("target:\n", "base: &b {kind: warehouse}\ntarget:\n  <<: *b\n"),
        4,
        "YAML anchors (&b)",
        id="merge-key",
    ),
    # an alias to an anchor that was never defined
    pytest.param(GOOD.replace("[tiktok_open_id]", "*nowhere"), 7, "YAML aliases", id="alias"),
    # unsafe and non-core tags, refused before anything is constructed
    pytest.param(
        GOOD + "description: !!python/object/apply:os.system ['touch pwned']\n",
        21,
        "YAML tag tag:yaml.org,2002:python/object/apply:os.system is not allowed",
        id="python-tag",
    ),
    pytest.param(GOOD + "description: !!binary aGVsbG8=\n", 21, "YAML tag", id="binary-tag"),
    pytest.param(GOOD + "description: !!set {a, b}\n", 21, "YAML tag", id="set-tag"),
    pytest.param(GOOD + "description: !custom x\n", 21, "YAML tag !custom", id="local-tag"),
    # nesting that would exhaust a recursive builder's stack
    pytest.param(
        GOOD + "description: " + "[" * 50_000 + "]" * 50_000 + "\n", 21, "nest", id="deep"
    ),
    pytest.param(
        GOOD + "description:\n" + "".join("  " * i + "- \n" for i in range(200)),
        62,
        "nest deeper than 40 levels",
        id="deep-block",
    ),
    # many values within the size cap
    pytest.param(
        GOOD + "description: [" + "0," * 200_000 + "0]\n", 21, "more than 50000", id="wide"
    ),
    # over the byte cap
    pytest.param(GOOD + "# " + "x" * (1024 * 1024) + "\n", 1, "1048576-byte limit", id="big"),
    # several documents
    pytest.param(GOOD + "---\n" + GOOD, 21, "more than one YAML document", id="documents"),
]


@pytest.mark.parametrize(("content", "line", "message"), BOMBS)
def test_yaml_bombs_and_unsafe_yaml_fail_fast(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str, line: int, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    error = _refused(_write(tmp_path, content))
    assert error.line == line, str(error)[:300]
    assert message in str(error), str(error)[:300]
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize(
    ("content", "line", "path", "message"),
    [
        # a key twice at the top, in target, and in a field
        (GOOD + "name: again\n", 21, "name", "duplicate key 'name'"),
        (GOOD.replace("  object:", "  kind: hubspot\n  object:"), 6, "target.kind", "duplicate"),
        (
            GOOD.replace("    required: true", "    type: integer"),
            12,
            "fields[0].type",
            "duplicate",
        ),
        # keys that differ only in YAML spelling still collide
        (GOOD + '"version": 1\n', 21, "version", "duplicate key 'version'"),
    ],
)
def test_duplicate_keys(tmp_path: Path, content: str, line: int, path: str, message: str) -> None:
    error = _refused(_write(tmp_path, content))
    assert (error.line, str(error).split(": ")[1]) == (line, path), str(error)
    assert message in str(error)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("- version: 1\n- name: x\n", "got a list"),
        ("just some text\n", "got a str"),
        ("42\n", "got a int"),
        ("~\n", "the file is empty"),
        ("", "the file is empty"),
        # a tab where YAML expects indentation
        ("   \n\t\n", "invalid YAML"),
        ("# only a comment\n", "the file is empty"),
        ("\ufeff", "the file is empty"),
        (b"\x00\x01\x02binary\xff\xfe", "not valid UTF-8"),
        (b"\xff\xfe" + GOOD.encode("utf-16-le"), "not valid UTF-8"),
        (GOOD.encode("latin-1") + "caf\xe9\n".encode("latin-1"), "not valid UTF-8"),
        ("version: 1\x00\n", "invalid YAML"),
        ("version: 1\x1b[31m\n", "invalid YAML"),
    ],
)
def test_files_that_are_not_a_mapping_document(
    tmp_path: Path, content: str | bytes, message: str
) -> None:
    error = _refused(_write(tmp_path, content))
    assert message in str(error), str(error)


@pytest.mark.parametrize(
    ("old", "new", "path"),
    [
        ("type: string\n    transforms", "type: {big}\n    transforms", "fields[1].type"),
        ("source: display_name", "source: {big}", "fields[1].source"),
        ("target: full_name", "target: {big}", "fields[1].target"),
        ("key: [tiktok_open_id]", "key: [{big}]", "key[0]"),
        ("kind: warehouse", "kind: {big}", "target.kind"),
        ("object: crm_contacts", "object: {big}", "target.object"),
        ("name: creator_contacts", "name: {big}", "name"),
        ("[strip, {truncate", "[{big}, {truncate", "fields[1].transforms[0]"),
        ("required: true", "required: {big}", "fields[0].required"),
    ],
)
def test_megabyte_values_give_short_messages(tmp_path: Path, old: str, new: str, path: str) -> None:
    big = "x" * 900_000
    error = _refused(_write(tmp_path, GOOD.replace(old, new.replace("{big}", big), 1)))
    assert f": {path}: " in str(error)
    assert "..." in str(error) or "length 900000" in str(error)


def test_mapping_check_reports_every_bad_file_on_one_line(tmp_path: Path) -> None:
    good = _write(tmp_path, GOOD, "good.yaml")
    bad = [
        _write(tmp_path, GOOD.replace("fields:", "feilds:"), "typo.yaml"),
        _write(tmp_path, _laughs(9) + GOOD, "bomb.yaml"),
        _write(tmp_path, b"\x00\xff\xfe garbage", "binary.yaml"),
        _write(tmp_path, "", "empty.yaml"),
        _write(tmp_path, GOOD.replace("crm_contacts", "videos; DROP TABLE x"), "sql.yaml"),
        _write(tmp_path, GOOD.replace("type: string\n    t", "type: " + "y" * 500_000 + "\n    t")),
        tmp_path / "missing.yaml",
    ]
    result = CliRunner().invoke(main, ["mapping", "check", str(good), *map(str, bad)])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.stdout.splitlines() == [
        f"ok {good}: profile -> warehouse crm_contacts, key (tiktok_open_id), 2 fields, 1 computed"
    ]
    # One `invalid file:line: field: problem` line per bad file; more problems of the same file
    # follow as `file:line: field: problem`.
    reported: list[str] = []
    for line in result.stderr.splitlines():
        assert len(line) < MAX_MESSAGE_CHARS
        match = re.match(r"(invalid )?([^:]+):\d+: [^\n]+: ", line)
        assert match, line
        if match.group(1):
            reported.append(match.group(2))
        else:
            assert match.group(2) == reported[-1]
    assert reported == [str(path) for path in bad]
    assert "Traceback" not in result.output


@hostile_settings(200)
@given(st.binary(max_size=400))
def test_random_bytes_give_a_mapping_or_an_error_naming_the_file(data: bytes) -> None:
    path = Path("/nonexistent-dir-for-hostile-tests") / "fuzz.yaml"
    try:
        from transforms import parse_mapping

        parse_mapping(data.decode("utf-8", "replace"), str(path))
    except MappingError as err:
        assert str(err).startswith(f"{path}:{err.line}: ")
        assert len(str(err)) < MAX_MESSAGE_CHARS


HOSTILE_SNIPPETS = st.sampled_from(
    [
        "&a ", "*a", "!!python/name:os.system ", "<<: ", "{", "}", "[", "]", "- ", ": ", "\t",
        "\n", "'", '"', "\\", "#", "%YAML 1.1\n", "---\n", "...\n", "? ", "|", ">", "@", "`",
        "\x00", "\ufeff", "\u2028", "\ud800", "1e999", ".nan", "0x1F", "~", "feilds", "intger",
    ]
)  # fmt: skip


@hostile_settings(300)
@given(st.lists(st.tuples(st.integers(0, len(GOOD)), HOSTILE_SNIPPETS), min_size=1, max_size=4))
def test_mutated_files_load_or_name_a_line_inside_the_file(
    edits: list[tuple[int, str]],
) -> None:
    from transforms import parse_mapping

    text = GOOD
    for position, snippet in sorted(edits, reverse=True):
        text = text[:position] + snippet + text[position:]
    try:
        parse_mapping(text, "mutated.yaml")
    except MappingError as err:
        assert str(err).startswith(f"mutated.yaml:{err.line}: ")
        # YAML also breaks lines at \r, \x85, \u2028 and \u2029 (editors may not).
        assert 1 <= err.line <= len(re.split("\r\n|[\n\r\x85\u2028\u2029]", text)) + 1
        assert len(str(err)) < MAX_MESSAGE_CHARS
