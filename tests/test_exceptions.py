"""StatusError and its classes: one per google.rpc.Code, with the gateway's HTTP status."""

from __future__ import annotations

import re

import pytest
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from v1op_pb import make_status
from v1op_pb._exceptions import (
    Aborted,
    AlreadyExists,
    Cancelled,
    DataLoss,
    DeadlineExceeded,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    OutOfRange,
    PermissionDenied,
    ResourceExhausted,
    StatusError,
    Unauthenticated,
    Unavailable,
    Unimplemented,
    Unknown,
    error_from_status,
    http_status_of,
)

# The HTTP statuses are those of operation-service.md (grpc-gateway's mapping); OUT_OF_RANGE
# and DATA_LOSS, which the document does not list, are grpc-gateway's 400 and 500.
TABLE = [
    (code_pb2.CANCELLED, Cancelled, 499),
    (code_pb2.UNKNOWN, Unknown, 500),
    (code_pb2.INVALID_ARGUMENT, InvalidArgument, 400),
    (code_pb2.DEADLINE_EXCEEDED, DeadlineExceeded, 504),
    (code_pb2.NOT_FOUND, NotFound, 404),
    (code_pb2.ALREADY_EXISTS, AlreadyExists, 409),
    (code_pb2.PERMISSION_DENIED, PermissionDenied, 403),
    (code_pb2.RESOURCE_EXHAUSTED, ResourceExhausted, 429),
    (code_pb2.FAILED_PRECONDITION, FailedPrecondition, 400),
    (code_pb2.ABORTED, Aborted, 409),
    (code_pb2.OUT_OF_RANGE, OutOfRange, 400),
    (code_pb2.UNIMPLEMENTED, Unimplemented, 501),
    (code_pb2.INTERNAL, Internal, 500),
    (code_pb2.UNAVAILABLE, Unavailable, 503),
    (code_pb2.DATA_LOSS, DataLoss, 500),
    (code_pb2.UNAUTHENTICATED, Unauthenticated, 401),
]
IDS = [code_pb2.Code.Name(code) for code, _, _ in TABLE]


def make_error_status() -> status_pb2.Status:
    return make_status(
        code_pb2.NOT_FOUND,
        "operation 'operations/x' not found",
        [
            error_details_pb2.ResourceInfo(
                resource_type="v1op.v1.Operation", resource_name="operations/x"
            ),
            error_details_pb2.ErrorInfo(reason="GONE", domain="example.com"),
        ],
    )


def test_the_table_covers_every_error_code_once():
    # A code added to google.rpc.Code must get its class and HTTP status here too.
    error_codes = {v for v in code_pb2.Code.values() if v != code_pb2.OK}
    assert {code for code, _, _ in TABLE} == error_codes
    assert len({cls for _, cls, _ in TABLE}) == len(TABLE)


@pytest.mark.parametrize(("code", "cls", "http"), TABLE, ids=IDS)
def test_each_code_has_its_class_and_http_status(code, cls, http):
    assert issubclass(cls, StatusError)
    assert cls.code == code
    assert cls.http_status == http
    assert http_status_of(code) == http
    error = error_from_status(make_status(code, "boom"))
    assert type(error) is cls
    assert error.code == code
    assert error.http_status == http


@pytest.mark.parametrize(("code", "cls", "http"), TABLE, ids=IDS)
def test_a_raised_class_builds_its_status(code, cls, http):
    detail = error_details_pb2.ErrorInfo(reason="R", domain="d")
    with pytest.raises(cls, match=re.escape("went wrong")) as caught:
        raise cls("went wrong", [detail])
    error = caught.value
    assert error.status.code == code
    assert error.status.message == "went wrong"
    assert error.details == [detail]
    assert str(error) == f"{code_pb2.Code.Name(code)}: went wrong"


def test_ok_is_http_200():
    assert http_status_of(code_pb2.OK) == 200


def test_unknown_code_is_http_500():
    assert http_status_of(99) == 500


def test_error_from_status_keeps_the_status_and_types_the_details():
    status = make_error_status()
    error = error_from_status(status)
    assert isinstance(error, NotFound)
    assert error.status == status
    assert error.message == status.message
    assert error.details == [
        error_details_pb2.ResourceInfo(
            resource_type="v1op.v1.Operation", resource_name="operations/x"
        ),
        error_details_pb2.ErrorInfo(reason="GONE", domain="example.com"),
    ]
    assert isinstance(error.details[0], error_details_pb2.ResourceInfo)


def test_error_from_status_holds_a_copy():
    # The caller may reuse its Status message; the exception must not change with it.
    status = make_error_status()
    error = error_from_status(status)
    status.message = "changed"
    del status.details[:]
    assert error.status.message == "operation 'operations/x' not found"
    assert len(error.status.details) == 2


def test_error_from_status_keeps_details_of_unknown_types_as_any():
    foreign = any_pb2.Any(type_url="example.com/acme.v9.Secret", value=b"\x08\x01")
    error = error_from_status(make_status(code_pb2.INTERNAL, "x", [foreign]))
    assert isinstance(error, Internal)
    assert error.details == [foreign]


def test_error_from_status_with_an_unknown_code_keeps_the_code():
    status = status_pb2.Status(code=99, message="from the future")
    error = error_from_status(status)
    assert type(error) is StatusError
    assert error.code == 99
    assert error.status == status
    assert error.code_name == "code 99"
    assert str(error) == "code 99: from the future"


def test_a_plain_status_error_is_unknown():
    error = StatusError("no code given")
    assert error.code == code_pb2.UNKNOWN
    assert error.http_status == 500
    assert error.status.code == code_pb2.UNKNOWN
