"""The built-in rows of the preset table say what their clients and the CRMs' contracts say.

A row is a declaration the push and the mapping loader trust without probing the client, so
each declaration is checked here against the client class and the documented API limits
(/work/shared/docs/crm-apis.md): HubSpot 100 inputs and string values, Salesforce 200 records.
"""

import pytest

from resources.crm.presets import PRESETS, crm_kinds, preset

# (kind, max records per request, every value a string, can archive)
DECLARED = [
    ("hubspot", 100, True, True),  # batch/upsert and batch/archive, properties are strings
    ("salesforce", 200, False, True),  # sObject Collections upsert and delete
    ("generic", 1_000, False, False),  # GENERIC_CRM_BATCH_SIZE at most; no archive call
]


@pytest.mark.parametrize(("kind", "max_batch", "strings_only", "can_archive"), DECLARED)
def test_each_row_declares_its_targets_limits_and_rules(kind, max_batch, strings_only, can_archive):
    row = preset(kind)
    assert (row.kind, row.max_batch, row.strings_only, row.can_archive) == (
        kind,
        max_batch,
        strings_only,
        can_archive,
    )


@pytest.mark.parametrize("kind", list(PRESETS))
def test_a_row_that_can_archive_has_a_client_that_archives(kind):
    row = preset(kind)
    assert row.client.service == kind  # type: ignore[attr-defined]
    assert callable(getattr(row.client, "archive_batches", None)) is row.can_archive


def test_the_table_order_is_the_configured_order():
    assert crm_kinds() == ("hubspot", "salesforce", "generic")
