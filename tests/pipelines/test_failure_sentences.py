"""One sentence per failed connection (issue 20): what `failure_for`, `connection_failure` and
`batch_failure` build from the errors a connection's sync records.

Pure round trips: errors in, `dg.Failure` out; the sentence names its connection once, is never
nested or repeated, and only an unexpected error keeps its cause (its trace, for the run's log).
"""

import pytest

from pipelines.defs.batch import batch_failure, connection_failure
from pipelines.defs.tiktok.failures import failure_for
from resources.configurable import DemoModeError
from resources.tiktok.errors import NeedsReconnect, TransientError
from services.outcome import ConnectionOutcome

DEMO_REFUSAL = DemoModeError(
    "connection 'demo-01' belongs to the built-in demo app and syncs only in demo mode "
    "(`tiktok-crm-sync demo`); live runs never read simulated data"
)


def outcome(name: str, *errors: BaseException) -> ConnectionOutcome:
    result = ConnectionOutcome(name)
    for index, error in enumerate(errors):
        result.fail(error, at=f"asset_{index}")
    return result


@pytest.mark.parametrize(
    ("error", "expected_cause"),
    [
        # needs reconnect: the fix is the command, no trace
        (NeedsReconnect("refresh token revoked", code="invalid_grant"), False),
        # a demo connection in a live run: its message already names the connection
        (DEMO_REFUSAL, False),
        # TikTok failed repeatedly: known, retryable, its trace stays in the log
        (TransientError("HTTP 503 three times", endpoint="video_list"), True),
        # nobody expected this one: type, message and trace
        (RuntimeError("boom"), True),
    ],
)
def test_each_failure_names_its_connection_once(error, expected_cause):
    name = "demo-01"
    failure = connection_failure(outcome(name, error))
    assert failure.description.count(f"'{name}'") == 1, failure.description
    assert (failure.__cause__ is error) is expected_cause


def test_the_same_error_in_two_places_is_said_once():
    failure = connection_failure(outcome("demo-01", DEMO_REFUSAL, DEMO_REFUSAL))
    assert failure.description == str(DEMO_REFUSAL)
    assert failure.metadata["failures_of_connection"].value == 2


def test_a_batch_lists_one_sentence_per_connection_and_keeps_an_unexpected_trace():
    boom = RuntimeError("boom")
    failed = {
        "creator-a": connection_failure(outcome("creator-a", NeedsReconnect("revoked"))),
        "creator-b": connection_failure(outcome("creator-b", boom)),
    }
    failure = batch_failure(5, failed)
    lines = failure.description.splitlines()
    assert lines[0] == "2 of 5 connections failed:"
    assert lines[1].startswith("- connection 'creator-a' needs to be reconnected: run `")
    assert lines[2] == "- connection 'creator-b': RuntimeError: boom"
    assert list(failure.metadata["failure_sentences"].value) == ["creator-a", "creator-b"]
    assert failure.__cause__ is boom


def test_an_unknown_error_is_left_to_the_caller():
    assert failure_for("creator-a", KeyError("x")) is None
