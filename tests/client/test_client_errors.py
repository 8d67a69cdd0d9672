"""Errors are google-api-core's exceptions: the client raises them with typed details, the
server ends calls with their Status, the gateway answers their HTTP status."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.api_core import exceptions
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from v1op_pb import make_status
from v1op_pb.client import error_from_status, status_from_exception
from v1op_pb.gateway.app import http_status_of
from v1op_pb.server.errors import status_of

ERROR_CODES = sorted(v for v in code_pb2.Code.values() if v != code_pb2.OK)


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


@pytest.mark.parametrize("code", ERROR_CODES, ids=code_pb2.Code.Name)
def test_each_code_gives_api_cores_class_and_http_status(code):
    error = error_from_status(make_status(code, "boom"))
    grpc_code = next(c for c in grpc.StatusCode if c.value[0] == code)
    expected = exceptions.exception_class_for_grpc_status(grpc_code)
    assert type(error) is expected and expected is not exceptions.GoogleAPICallError
    assert error.grpc_status_code is grpc_code
    assert error.message == "boom"
    # api-core leaves UNKNOWN and DATA_LOSS without one: a gateway answers 500.
    assert http_status_of(code) == (expected.code or 500)


def test_http_statuses_of_the_documented_mapping():
    # operation-service.md (grpc-gateway's mapping), which api-core's classes agree with.
    assert [
        http_status_of(c)
        for c in (
            code_pb2.OK,
            code_pb2.CANCELLED,
            code_pb2.INVALID_ARGUMENT,
            code_pb2.NOT_FOUND,
            code_pb2.FAILED_PRECONDITION,
            code_pb2.UNAUTHENTICATED,
            code_pb2.PERMISSION_DENIED,
            code_pb2.UNAVAILABLE,
            code_pb2.DEADLINE_EXCEEDED,
        )
    ] == [200, 499, 400, 404, 400, 401, 403, 503, 504]
    assert http_status_of(99) == 500


def test_details_are_typed_and_error_info_is_api_cores():
    error = error_from_status(make_error_status())
    assert isinstance(error, exceptions.NotFound)
    assert error.details == [
        error_details_pb2.ResourceInfo(
            resource_type="v1op.v1.Operation", resource_name="operations/x"
        ),
        error_details_pb2.ErrorInfo(reason="GONE", domain="example.com"),
    ]
    assert (error.reason, error.domain) == ("GONE", "example.com")


def test_details_of_unknown_types_stay_any():
    foreign = any_pb2.Any(type_url="example.com/acme.v9.Secret", value=b"\x08\x01")
    error = error_from_status(make_status(code_pb2.INTERNAL, "x", [foreign]))
    assert isinstance(error, exceptions.InternalServerError)
    assert error.details == [foreign]


def test_a_code_outside_google_rpc_code_is_kept():
    error = error_from_status(status_pb2.Status(code=77, message="from the future"))
    assert type(error) is exceptions.GoogleAPICallError
    assert error.grpc_status_code == 77
    assert status_from_exception(error) == status_pb2.Status(code=77, message="from the future")


def test_the_server_status_of_an_exception_round_trips():
    status = make_error_status()
    assert status_of(error_from_status(status)) == status
    raised = exceptions.FailedPrecondition(
        "already finished", details=[error_details_pb2.PreconditionFailure()]
    )
    back = status_of(raised)
    assert (back.code, back.message) == (code_pb2.FAILED_PRECONDITION, "already finished")
    assert len(back.details) == 1
    assert status_of(exceptions.GoogleAPICallError("no code")).code == code_pb2.UNKNOWN


@pytest.mark.parametrize(
    ("error", "code", "message"),
    [
        (exceptions.NotFound("gone"), code_pb2.NOT_FOUND, "gone"),
        (TimeoutError("slow"), code_pb2.DEADLINE_EXCEEDED, "TimeoutError: slow"),
        (asyncio.CancelledError(), code_pb2.CANCELLED, "CancelledError"),
        (KeyboardInterrupt(), code_pb2.CANCELLED, "KeyboardInterrupt"),
        (NotImplementedError("later"), code_pb2.UNIMPLEMENTED, "NotImplementedError: later"),
        (ValueError("bad input"), code_pb2.UNKNOWN, "ValueError: bad input"),
    ],
)
def test_an_exception_becomes_a_status(error, code, message):
    status = status_from_exception(error)
    assert (status.code, status.message) == (code, message)
