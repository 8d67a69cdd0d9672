"""The server's rules as functions, apart from the manager that applies them (the manager's
tests cover them through every call)."""

from __future__ import annotations

import pytest
from google.api_core.exceptions import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from google.protobuf import duration_pb2, struct_pb2
from google.rpc import error_details_pb2
from v1op.example.v1 import evaluation_pb2

from v1op_pb import Operation, make_status
from v1op_pb.server import rules
from v1op_pb.server.auth import Principal

ADA = Principal("users/ada")
EVALUATOR = Principal("services/evaluator")


def _bad_request(error: InvalidArgument) -> error_details_pb2.BadRequest:
    (detail,) = error.details
    assert isinstance(detail, error_details_pb2.BadRequest)
    return detail


@pytest.mark.parametrize("name", ["operations/x", "operations/0b9a-4c", "operations/a b"])
def test_check_name_takes_an_operation_name(name: str) -> None:
    rules.check_name(name)


@pytest.mark.parametrize("name", ["", "operations/", "operations/a/b", "jobs/x", "x"])
def test_check_name_refuses_other_names_naming_the_field(name: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        rules.check_name(name, "parent")
    (violation,) = _bad_request(caught.value).field_violations
    assert violation.field == "parent"
    assert "is not an operation name" in caught.value.message


def test_check_batch_names_the_index_of_a_bad_name() -> None:
    with pytest.raises(InvalidArgument) as caught:
        rules.check_batch(["operations/a", "operations/b", "nope"])
    assert _bad_request(caught.value).field_violations[0].field == "names[2]"


def test_check_batch_refuses_more_than_the_maximum() -> None:
    rules.check_batch(["operations/a"] * rules.MAX_BATCH)
    with pytest.raises(InvalidArgument, match=f"at most {rules.MAX_BATCH} per call"):
        rules.check_batch(["operations/a"] * (rules.MAX_BATCH + 1))


@pytest.mark.parametrize(
    ("asked", "taken"),
    [
        (0, rules.DEFAULT_PAGE_SIZE),
        (1, 1),
        (rules.MAX_PAGE_SIZE, rules.MAX_PAGE_SIZE),
        (rules.MAX_PAGE_SIZE + 1, rules.MAX_PAGE_SIZE),
    ],
)
def test_page_size_of_follows_aip_158(asked: int, taken: int) -> None:
    assert rules.page_size_of(asked) == taken


def test_page_size_of_refuses_a_negative_size() -> None:
    with pytest.raises(InvalidArgument, match="page_size -1 is negative"):
        rules.page_size_of(-1)


def test_fitting_count_keeps_what_fits_and_at_least_one() -> None:
    operations = [Operation(name=f"operations/{i}", creator="x" * 100) for i in range(10)]
    one = operations[0].ByteSize() + 6
    assert rules.fitting_count(operations, one * 10) == 10
    assert rules.fitting_count(operations, one * 3) == 3
    assert rules.fitting_count(operations, 1) == 1


def test_check_read_hides_deleted_operations_and_others_operations() -> None:
    mine = Operation(name="operations/a", creator=ADA.name)
    rules.check_read(ADA, mine)
    rules.check_read(EVALUATOR, mine)
    with pytest.raises(PermissionDenied):
        rules.check_read(Principal("users/bob"), mine)
    mine.delete_time.FromNanoseconds(1)
    with pytest.raises(NotFound) as caught:
        rules.check_read(EVALUATOR, mine)
    (detail,) = caught.value.details
    assert detail == rules.resource_info("operations/a")


def test_require_service_and_check_creator() -> None:
    rules.require_service(EVALUATOR, "create")
    with pytest.raises(PermissionDenied, match="only services create operations"):
        rules.require_service(ADA, "create")
    operation = Operation(name="operations/a", creator=ADA.name)
    rules.check_creator(ADA, operation, "abort")
    with pytest.raises(PermissionDenied, match="only the creator of operations/a may abort"):
        rules.check_creator(EVALUATOR, operation, "abort")


def test_check_running_refuses_a_finished_operation() -> None:
    rules.check_running(Operation(name="operations/a"))
    with pytest.raises(FailedPrecondition) as caught:
        rules.check_running(Operation(name="operations/a", done=True))
    (detail,) = caught.value.details
    assert detail.violations[0].type == "STATE"


def test_outcome_is_exactly_one_of_error_or_response_and_is_copied() -> None:
    with pytest.raises(InvalidArgument, match="exactly one of error or response"):
        rules.check_outcome(Operation(name="operations/a"))
    failed = Operation(name="operations/a", error=make_status(5, "gone"))
    rules.check_outcome(failed)
    target = Operation(name="operations/a")
    rules.copy_outcome(failed, target)
    assert target.done and target.error.message == "gone"


def test_not_before_never_goes_back_in_time() -> None:
    operation = Operation(name="operations/a")
    operation.create_time.FromNanoseconds(1_000)
    operation.update_time.FromNanoseconds(5_000)
    assert rules.not_before(operation, 9_000).ToNanoseconds() == 9_000
    assert rules.not_before(operation, 2_000).ToNanoseconds() == 5_000  # the clock stepped back
    rules.stamp_update(operation, 3_000, EVALUATOR)
    assert operation.update_time.ToNanoseconds() == 5_000
    assert operation.updater == EVALUATOR.name


def test_timestamp_of_is_exact_to_the_nanosecond() -> None:
    stamp = rules.timestamp_of(1_795_000_000_123_456_789)
    assert (stamp.seconds, stamp.nanos) == (1_795_000_000, 123_456_789)


def test_progress_of_reads_a_struct_and_any_message_with_those_fields() -> None:
    struct = struct_pb2.Struct()
    struct.update({"progress": 0.25, "message": "a quarter"})
    assert rules.progress_of(struct) == (0.25, "a quarter")
    assert rules.progress_of(struct_pb2.Struct()) == (0.0, "")
    typed = evaluation_pb2.EvaluationProgress(progress=0.5, message="half")
    assert rules.progress_of(typed) == (0.5, "half")
    # Each field is read where it is: a Status has a message and no progress.
    assert rules.progress_of(make_status(1, "cancelled")) == (0.0, "cancelled")
    assert rules.progress_of(duration_pb2.Duration(seconds=3)) == (0.0, "")
