"""Reading a HubSpot batch answer by its contract: pure cases of `read_answer`.

Inputs as the client sends them and answers shaped like the contract's 200/207 bodies; each case
says which inputs count as written, which failed with which reason, and what is left unknown.
"""

import pytest

from resources.crm.hubspot_answers import combined_class, error_class, read_answer
from resources.crm.models import AUTH, TRANSIENT, VALIDATION

KEY = "tiktok_open_id"


def inputs(*ids: str) -> list[dict]:
    return [
        {"idProperty": KEY, "id": i, "properties": {KEY: i}, "objectWriteTraceId": i} for i in ids
    ]


def result(record_id: str, *, trace: bool = True, echo: bool = True, new: bool = True) -> dict:
    answer = {"id": f"hs-{record_id}", "properties": {KEY: record_id} if echo else {}, "new": new}
    return answer | ({"objectWriteTraceId": record_id} if trace else {})


def error(message: str, category: str = "VALIDATION_ERROR", **context: list) -> dict:
    return {"status": "400", "category": category, "message": message, "context": context}


def body(results: list, errors: list | None = None) -> dict:
    answer = {"status": "COMPLETE", "results": results, "startedAt": "x", "completedAt": "y"}
    return answer | ({"numErrors": len(errors), "errors": errors} if errors else {})


def test_results_are_matched_by_trace_id_or_by_the_id_property_value():
    results = [result("a"), result("b", trace=False, new=False)]
    answer = read_answer(200, body(results), inputs("a", "b"), KEY)
    assert (answer.written.created, answer.written.updated) == (("a",), ("b",))
    assert answer.written.crm_ids == {"a": "hs-a", "b": "hs-b"}


def test_a_lone_failed_input_takes_the_errors_nobody_else_took():
    # The contract's own example: the context names a property, not the record.
    errors = [error("Property values were not valid", invalidPropertyName=["tiktok_bio"])]
    answer = read_answer(207, body([result("a")], errors), inputs("a", "b"), KEY)
    [rejected] = answer.rejected
    assert (rejected.key, rejected.error_class) == ("b", VALIDATION)
    assert answer.unattributed == ()


def test_several_failed_inputs_and_unnamed_errors_cannot_be_told_apart():
    errors = [error("bad bio", invalidPropertyName=["tiktok_bio"]), error("bad email")]
    answer = read_answer(207, body([result("a")], errors), inputs("a", "b", "c"), KEY)
    assert answer.unattributed == ("b", "c") and answer.rejected == ()
    assert answer.unattributed_reason == "bad bio; bad email"


def test_a_context_value_naming_a_failed_input_attributes_whatever_its_key():
    errors = [error("bad b", whatever=["b"]), error("bad c", records=["c"])]
    answer = read_answer(207, body([result("a")], errors), inputs("a", "b", "c"), KEY)
    assert {r.key: r.reason for r in answer.rejected} == {"b": "bad b", "c": "bad c"}


def test_the_error_id_is_not_a_record_id():
    errors = [{"status": "400", "category": "VALIDATION_ERROR", "message": "m", "id": "b"}]
    answer = read_answer(207, body([], errors), inputs("b", "c"), KEY)
    assert answer.unattributed == ("b", "c")


def test_inputs_without_result_or_error_are_unanswered():
    answer = read_answer(200, body([result("a")]), inputs("a", "b"), KEY)
    assert answer.unanswered == ("b",) and answer.written.created == ("a",)


def test_a_complete_200_with_one_nameless_result_per_input_wrote_them_all():
    results = [result("a", trace=False, echo=False), result("b", trace=False, echo=False)]
    answer = read_answer(200, body(results), inputs("a", "b"), KEY)
    assert answer.written.accepted == ("a", "b")


@pytest.mark.parametrize(
    ("errors", "expected"),
    [
        ([error("m", "RATE_LIMITS")], TRANSIENT),
        ([{"status": "503", "message": "m"}], TRANSIENT),  # no category: the status says it
        ([error("m", "MISSING_SCOPES"), error("m")], AUTH),  # credentials first
        ([error("m", "RATE_LIMITS"), error("m")], VALIDATION),  # the content is part of it
    ],
)
def test_the_class_of_errors_taken_together(errors, expected):
    assert combined_class(errors) == expected
    assert error_class(errors[0]) in (TRANSIENT, AUTH, VALIDATION)
