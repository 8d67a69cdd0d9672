"""make_status and status_details: google.rpc.Status with typed details."""

from __future__ import annotations

import re
from pathlib import Path

import google.rpc
import grpc_tools
import pytest
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_tools import protoc
from v1op.example.v1 import evaluation_pb2

from v1op_pb import Status, TypeRegistry, from_json, make_status, pack, status_details, to_json

PROTO_ROOT = Path(__file__).resolve().parent / "data"
WKT_INCLUDE = Path(grpc_tools.__file__).parent / "_proto"
GOOGLEAPIS_INCLUDE = Path(google.rpc.__path__[0]).parent.parent


def make_details() -> list:
    return [
        error_details_pb2.ErrorInfo(
            reason="QUOTA_EXHAUSTED", domain="example.com", metadata={"quota": "tokens"}
        ),
        error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=3600)),
        error_details_pb2.BadRequest(
            field_violations=[{"field": "pageSize", "description": "must be positive"}]
        ),
        error_details_pb2.QuotaFailure(violations=[{"subject": "project:p", "description": "d"}]),
        error_details_pb2.PreconditionFailure(violations=[{"type": "TOS", "subject": "s"}]),
        error_details_pb2.DebugInfo(stack_entries=["a", "b"], detail="d"),
        error_details_pb2.RequestInfo(request_id="r-1"),
        error_details_pb2.ResourceInfo(resource_type="t", resource_name="n"),
        error_details_pb2.Help(links=[{"description": "quota", "url": "https://x.test"}]),
        error_details_pb2.LocalizedMessage(locale="en-US", message="Quota used up."),
    ]


def make_foreign_any() -> any_pb2.Any:
    """An Any whose type no registry knows, with bytes that must survive untouched."""
    return any_pb2.Any(type_url="example.com/types/acme.v9.Secret", value=b"\x08\x96\x01\x12\x01x")


def test_make_status_packs_typed_details_in_order():
    details = make_details()
    status = make_status(code_pb2.RESOURCE_EXHAUSTED, "quota", details)
    assert isinstance(status, status_pb2.Status)
    assert status.code == code_pb2.RESOURCE_EXHAUSTED
    assert status.message == "quota"
    assert [d.type_url for d in status.details] == [
        f"type.googleapis.com/{d.DESCRIPTOR.full_name}" for d in details
    ]
    for packed, detail in zip(status.details, details, strict=True):
        assert packed.Is(detail.DESCRIPTOR)


def test_make_status_takes_an_any_as_it_is():
    foreign = make_foreign_any()
    already_packed = pack(error_details_pb2.ErrorInfo(reason="R"))
    status = make_status(code_pb2.INTERNAL, "x", [foreign, already_packed])
    # Not packed a second time into an Any holding an Any.
    assert list(status.details) == [foreign, already_packed]


def test_make_status_defaults():
    assert make_status(code_pb2.OK) == Status()
    assert Status is status_pb2.Status


def test_make_status_accepts_any_iterable_of_details():
    status = make_status(code_pb2.ABORTED, details=(d for d in make_details()[:2]))
    assert len(status.details) == 2


def test_make_status_accepts_own_message_types():
    progress = evaluation_pb2.EvaluationProgress(progress=0.5)
    status = make_status(code_pb2.UNKNOWN, details=[progress])
    assert status_details(status) == [progress]


def test_status_details_reads_details_back_typed():
    details = make_details()
    status = make_status(code_pb2.RESOURCE_EXHAUSTED, "quota", details)
    out = status_details(status)
    assert out == details
    for got, want in zip(out, details, strict=True):
        assert isinstance(got, type(want))
    assert isinstance(out[0], error_details_pb2.ErrorInfo)
    assert status.details[0].Is(error_details_pb2.ErrorInfo.DESCRIPTOR)
    assert not status.details[1].Is(error_details_pb2.ErrorInfo.DESCRIPTOR)


def test_status_details_keeps_unknown_types_as_any():
    foreign = make_foreign_any()
    info = error_details_pb2.ErrorInfo(reason="R")
    status = make_status(code_pb2.INTERNAL, "x", [info, foreign])
    out = status_details(status)
    assert out[0] == info
    assert isinstance(out[1], any_pb2.Any)
    assert out[1] == foreign
    assert out[1].value == foreign.value


def test_status_details_keeps_undecodable_details_as_any():
    broken = any_pb2.Any(type_url="type.googleapis.com/google.rpc.ErrorInfo", value=b"\xff\xff")
    out = status_details(make_status(code_pb2.INTERNAL, details=[broken]))
    assert out == [broken]
    assert isinstance(out[0], any_pb2.Any)
    # It still says what it claims to be; only its bytes are bad.
    assert out[0].Is(error_details_pb2.ErrorInfo.DESCRIPTOR)


def test_status_details_uses_the_given_registry():
    status = make_status(code_pb2.INTERNAL, details=make_details()[:2])
    registry = TypeRegistry(use_default_pool=False).register(error_details_pb2.ErrorInfo)
    info, retry = status_details(status, registry)
    assert isinstance(info, error_details_pb2.ErrorInfo)
    assert isinstance(retry, any_pb2.Any)
    assert retry.Is(error_details_pb2.RetryInfo.DESCRIPTOR)


def test_status_details_of_a_status_read_from_json():
    text = (
        '{"error": {"code": 5, "message": "gone", "details": ['
        '{"@type": "type.googleapis.com/google.rpc.ResourceInfo", "resourceName": "x"},'
        '{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.5s"}]}}'
    )
    op = from_json(text)
    assert status_details(op.error) == [
        error_details_pb2.ResourceInfo(resource_name="x"),
        error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=1, nanos=5 * 10**8)),
    ]


def test_made_status_writes_documented_json():
    status = make_status(code_pb2.NOT_FOUND, "gone", [error_details_pb2.ErrorInfo(reason="R")])
    assert to_json(status) == (
        '{"code":5,"message":"gone","details":['
        '{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"R"}]}'
    )


def test_status_details_stay_generated_classes_with_a_descriptor_set(tmp_path):
    # A service's own protos often import google/rpc/error_details.proto. Loading their
    # descriptor set must not turn ErrorInfo details into a look-alike class that fails the
    # isinstance test status_details documents.
    descriptor_set = tmp_path / "failure.pb"
    assert (
        protoc.main(
            [
                "protoc",
                f"-I{PROTO_ROOT}",
                f"-I{WKT_INCLUDE}",
                f"-I{GOOGLEAPIS_INCLUDE}",
                f"--descriptor_set_out={descriptor_set}",
                "regtest/v1/failure.proto",
            ]
        )
        == 0
    )
    registry = TypeRegistry()
    registry.add_descriptor_set(descriptor_set)
    info = error_details_pb2.ErrorInfo(reason="R")
    (out,) = status_details(make_status(code_pb2.INTERNAL, details=[info]), registry)
    assert isinstance(out, error_details_pb2.ErrorInfo)
    assert out == info


@pytest.mark.parametrize("code", ["5", 5.0, None, True, False, b"5"], ids=repr)
def test_make_status_bad_code_type_is_a_type_error(code):
    # bool is an int subclass, but True is no google.rpc.Code.
    with pytest.raises(TypeError, match=re.escape("code must be an int")):
        make_status(code)


@pytest.mark.parametrize("code", [2**31, -(2**31) - 1, 2**63])
def test_make_status_code_out_of_int32_is_a_value_error(code):
    with pytest.raises(ValueError, match=re.escape(f"code {code} is out of the int32 range")):
        make_status(code)


@pytest.mark.parametrize("code", [2**31 - 1, -(2**31), 999])
def test_make_status_accepts_every_int32(code):
    # Codes beyond google.rpc.Code are carried, not rejected: servers may send newer codes.
    assert make_status(code).code == code


def test_make_status_bad_detail_is_a_type_error():
    with pytest.raises(TypeError):
        make_status(code_pb2.INTERNAL, details=[{"reason": "R"}])
