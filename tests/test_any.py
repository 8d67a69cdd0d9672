"""pack and unpack: Any with typed contents."""

from __future__ import annotations

import re

import pytest
from factories import make_failed, make_succeeded
from google.protobuf import any_pb2, duration_pb2, empty_pb2, struct_pb2, wrappers_pb2
from google.rpc import error_details_pb2
from v1op.example.v1 import evaluation_pb2

from v1op_pb import ConversionError, TypeRegistry, UnknownTypeError, pack, unpack


def make_struct() -> struct_pb2.Struct:
    value = struct_pb2.Struct()
    value.update({"model": "danube", "retries": 2, "flags": ["cached", None]})
    return value


def make_result(scores: dict[str, float]) -> evaluation_pb2.EvaluationResult:
    result = evaluation_pb2.EvaluationResult(evaluation="evaluations/e1", tokens_used=2**64 - 1)
    for key, value in scores.items():
        result.scores[key] = value
    return result


ROUND_TRIP_MESSAGES = [
    error_details_pb2.ErrorInfo(reason="QUOTA", domain="example.com", metadata={"k": "v"}),
    error_details_pb2.BadRequest(field_violations=[{"field": "a", "description": "b"}]),
    duration_pb2.Duration(seconds=-3, nanos=-500),
    wrappers_pb2.Int64Value(value=-(2**63)),
    empty_pb2.Empty(),
    make_struct(),
    make_result({"faithfulness": 0.5}),
    any_pb2.Any(type_url="type.googleapis.com/google.protobuf.Empty"),
    make_failed(),
    make_succeeded(),
]


@pytest.mark.parametrize("message", ROUND_TRIP_MESSAGES, ids=lambda m: m.DESCRIPTOR.name)
def test_round_trip(message):
    packed = pack(message)
    assert packed.type_url == f"type.googleapis.com/{message.DESCRIPTOR.full_name}"
    assert packed.Is(message.DESCRIPTOR)
    out = unpack(packed)
    assert type(out) is type(message)
    assert out == message


def test_pack_interoperates_with_any_unpack():
    info = error_details_pb2.ErrorInfo(reason="R")
    out = error_details_pb2.ErrorInfo()
    assert pack(info).Unpack(out)
    assert out == info


def test_unpack_reads_what_any_pack_wrote():
    packed = any_pb2.Any()
    packed.Pack(error_details_pb2.RetryInfo(retry_delay={"seconds": 7}))
    assert unpack(packed) == error_details_pb2.RetryInfo(retry_delay={"seconds": 7})


@pytest.mark.parametrize("prefix", ["example.com/types", "example.com/types/"])
def test_custom_type_url_prefix(prefix):
    # With or without the trailing slash, exactly one slash separates prefix and name.
    packed = pack(error_details_pb2.ErrorInfo(reason="R"), type_url_prefix=prefix)
    assert packed.type_url == "example.com/types/google.rpc.ErrorInfo"
    assert packed.Is(error_details_pb2.ErrorInfo.DESCRIPTOR)
    assert unpack(packed) == error_details_pb2.ErrorInfo(reason="R")


def test_pack_is_deterministic_for_maps():
    # Maps have no order of their own; the same contents must always give the same bytes,
    # or equal Anys compare unequal.
    keys = [f"metric-{i}" for i in range(40)]
    forward = make_result({k: i / 8 for i, k in enumerate(keys)})
    backward = make_result({k: keys.index(k) / 8 for k in reversed(keys)})
    assert forward == backward
    assert pack(forward).value == pack(backward).value
    assert pack(forward) == pack(backward)


def test_pack_is_deterministic_for_nested_maps():
    forward = struct_pb2.Struct()
    backward = struct_pb2.Struct()
    items = [(f"k{i}", {"inner": i, "z": [i]}) for i in range(30)]
    for key, value in items:
        forward.update({key: value})
    for key, value in reversed(items):
        backward.update({key: value})
    assert pack(forward) == pack(backward)


def test_pack_returns_a_new_any():
    message = error_details_pb2.ErrorInfo(reason="before")
    packed = pack(message)
    message.reason = "after"
    assert unpack(packed).reason == "before"


def test_unpack_unknown_type_is_a_conversion_error():
    packed = any_pb2.Any(type_url="type.googleapis.com/nowhere.v1.Missing", value=b"\x08\x01")
    with pytest.raises(ConversionError, match=re.escape("nowhere.v1.Missing")) as caught:
        unpack(packed)
    assert caught.value.segments == ["@type"]
    assert isinstance(caught.value.__cause__, UnknownTypeError)


def test_unpack_uses_the_given_registry():
    packed = pack(error_details_pb2.ErrorInfo(reason="R"))
    with pytest.raises(ConversionError, match=re.escape("google.rpc.ErrorInfo")):
        unpack(packed, TypeRegistry(use_default_pool=False))
    registry = TypeRegistry(use_default_pool=False).register(error_details_pb2.ErrorInfo)
    assert unpack(packed, registry) == error_details_pb2.ErrorInfo(reason="R")


@pytest.mark.parametrize(
    "value",
    [
        b"\xff\xff\xff",  # a varint that never ends
        b"\x0a\x05ab",  # a length beyond the end
        b"\x0f",  # wire type 7 does not exist
    ],
    ids=repr,
)
def test_unpack_invalid_bytes_is_a_conversion_error(value):
    packed = any_pb2.Any(type_url="type.googleapis.com/google.rpc.ErrorInfo", value=value)
    with pytest.raises(ConversionError, match=re.escape("google.rpc.ErrorInfo")):
        unpack(packed)


@pytest.mark.parametrize(
    "value",
    [
        None,
        b"\x08\x01",
        {"reason": "R"},
        "google.rpc.ErrorInfo",
        error_details_pb2.ErrorInfo,  # the class, not an instance
    ],
    ids=repr,
)
def test_pack_non_message_is_a_type_error(value):
    with pytest.raises(TypeError, match=re.escape("expected a protobuf message")):
        pack(value)
