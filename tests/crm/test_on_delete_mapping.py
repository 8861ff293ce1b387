"""The mapping file's `on_delete` key: parsed, checked against the target, read by the push.

Each case is a small mapping text run through `parse_mapping`, as `mapping check` would.
"""

import dataclasses

import pytest

from resources.crm.models import ARCHIVE, FLAG, KEEP
from services.crm_mapping import delete_policy
from transforms import Mapping, MappingError, parse_mapping

VIDEO_MAPPING = """
version: 1
name: {kind}_videos
source: video
target: {{kind: {kind}, object: {object}}}
key: [video_id]
fields:
  - {{source: id, target: video_id, type: string, required: true}}
  - {{source: deleted_at, target: tiktok_deleted_at, type: {deleted_type}}}
"""
PROFILE_MAPPING = """
version: 1
name: hubspot_contacts
source: profile
target: {kind: hubspot, object: contacts}
key: [tiktok_open_id]
on_delete: flag
fields:
  - {source: open_id, target: tiktok_open_id, type: string, required: true}
"""


def video_mapping(kind: str, on_delete: str | None, deleted_type: str = "string") -> str:
    objects = {"hubspot": "videos", "salesforce": "Video__c", "generic": "videos"}
    text = VIDEO_MAPPING.format(
        kind=kind, object=objects.get(kind, "tiktok_videos_x"), deleted_type=deleted_type
    )
    return text + (f"on_delete: {on_delete}\n" if on_delete else "")


@pytest.mark.parametrize(
    ("kind", "on_delete", "mode"),
    [
        ("hubspot", None, KEEP),  # the default: nothing changes in the CRM
        ("hubspot", "archive", ARCHIVE),
        ("salesforce", "archive", ARCHIVE),
        ("generic", "flag", FLAG),
        ("hubspot", "flag", FLAG),
    ],
)
def test_on_delete_is_read_into_the_policy(kind, on_delete, mode):
    mapping = parse_mapping(video_mapping(kind, on_delete))
    policy = delete_policy(mapping)
    assert (policy.mode, policy.flag_field) == (mode, "tiktok_deleted_at")


def test_a_mapping_built_in_code_keeps_deleted_records():
    """`on_delete` is a field of every Mapping, not only of one read from a file."""
    loaded = parse_mapping(video_mapping("salesforce", "archive"))
    given = {f.name for f in dataclasses.fields(Mapping)} - {"on_delete"}
    built = Mapping(**{name: getattr(loaded, name) for name in given})
    assert (loaded.on_delete, built.on_delete) == (ARCHIVE, KEEP)
    assert delete_policy(built).mode == KEEP


def test_hubspot_flags_are_written_as_text():
    assert delete_policy(parse_mapping(video_mapping("hubspot", "flag"))).flag_type == "string"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (video_mapping("hubspot", "delete"), "unknown on_delete value 'delete'"),
        (video_mapping("generic", "archive"), "no archive call"),
        (video_mapping("warehouse", "archive"), "applies to CRM targets"),
        (PROFILE_MAPPING, "field mapped from deleted_at"),
    ],
)
def test_an_on_delete_the_target_cannot_do_is_refused_with_the_line(text, message):
    with pytest.raises(MappingError, match=message) as raised:
        parse_mapping(text, "videos.yaml")
    assert "on_delete" in str(raised.value)


def test_the_shipped_mappings_keep_by_default():
    from resources.settings import mappings_dir
    from transforms import load_mapping

    for path in sorted(mappings_dir().glob("*.yaml")):
        assert delete_policy(load_mapping(path)).mode in (KEEP, FLAG, ARCHIVE)
