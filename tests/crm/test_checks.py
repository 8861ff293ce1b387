"""The reject-rate check's arithmetic and its threshold variable: pure functions."""

import pytest

from pipelines.defs.crm.checks import REJECT_RATE_CHECK, reject_rate_result
from services.crm_push import RejectRateSettingError, max_reject_rate


@pytest.mark.parametrize(
    ("rejected", "total", "threshold", "passed"),
    [
        (0, 0, 0.05, True),  # nothing to push is not a failure
        (5, 100, 0.05, True),  # exactly at the threshold passes
        (6, 100, 0.05, False),
        (1, 1, 1.0, True),  # a threshold of 1 accepts everything
    ],
)
def test_reject_rate(rejected, total, threshold, passed):
    result = reject_rate_result("hubspot_contacts", rejected, total, threshold)
    assert result.passed is passed and result.check_name == REJECT_RATE_CHECK
    assert result.metadata["rejected"].value == rejected


@pytest.mark.parametrize(("raw", "value"), [(None, 0.05), ("0.2", 0.2), ("0", 0.0), (" 1 ", 1.0)])
def test_threshold_from_the_environment(raw, value):
    environ = {} if raw is None else {"CRM_MAX_REJECT_RATE": raw}
    assert max_reject_rate(environ) == value


@pytest.mark.parametrize("raw", ["5%", "5", "-0.1", "nan"])
def test_a_bad_threshold_says_what_to_write(raw):
    with pytest.raises(RejectRateSettingError, match=r"CRM_MAX_REJECT_RATE must be a fraction"):
        max_reject_rate({"CRM_MAX_REJECT_RATE": raw})
