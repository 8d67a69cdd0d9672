"""What every input must come to, whatever its bytes: a message or a ConversionError, and
for a message, output that reads back to it.

A check raises AssertionError (or lets any other exception through) when an input breaks a
promise; the fuzzers report that as a finding, the property tests as a failure.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from google.protobuf import any_pb2, struct_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message

from v1op_pb import (
    ConversionError,
    Operation,
    from_binary,
    from_json,
    from_text,
    to_binary,
    to_json,
    to_text,
)
from v1op_pb._codec.descriptors import is_repeated
from v1op_pb._registry import UnknownTypeError, default_registry

_FLOATING = (FieldDescriptor.CPPTYPE_DOUBLE, FieldDescriptor.CPPTYPE_FLOAT)

__all__ = [
    "GOLDEN",
    "canonical",
    "check_binary",
    "check_json",
    "check_text",
    "golden_seeds",
    "same_value",
]

GOLDEN = Path(__file__).resolve().parent.parent / "tests" / "golden"


def golden_seeds(kind: str) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of the golden files as seeds for ``kind``: json, binary or text."""
    for path in sorted((GOLDEN / "valid").glob("*.binpb")):
        operation: Operation = from_binary(path.read_bytes())
        if kind == "binary":
            yield path.stem, path.read_bytes()
        elif kind == "text":
            yield path.stem, to_text(operation).encode("utf-8")
    if kind == "json":
        for directory in ("valid", "invalid"):
            for path in sorted((GOLDEN / directory).glob("*.json")):
                if path.name != "expected.json":
                    yield f"{directory}-{path.stem}", path.read_bytes()


def _json_round_trip(operation: Operation) -> None:
    """JSON output, if there is one, reads back to the same value."""
    try:
        text = to_json(operation)
    except ConversionError:
        return
    again = from_json(text)
    # The same value (map entries may come in another order from binary than from JSON),
    # and from then on a fixpoint.
    assert same_value(again, operation), (text, to_json(again))
    assert to_json(from_json(to_json(again))) == to_json(again)
    assert from_binary(to_binary(again)) == again


def canonical(message: Message) -> Message:
    """A copy with every Any of a known type packed deterministically (as from_json and
    from_text pack them), kind-less Values null and NaNs Python's NaN: equal values give
    equal canonical bytes."""
    copy = type(message)()
    copy.CopyFrom(message)
    _repack(copy)
    return copy


def _repack(message: Message) -> None:
    if isinstance(message, struct_pb2.Value) and message.WhichOneof("kind") is None:
        # A Value with no kind is written null and reads back as null_value, as in
        # json_format: taken as the same value, not as a loss.
        message.null_value = struct_pb2.NULL_VALUE
        return
    if isinstance(message, any_pb2.Any):
        try:
            inner = default_registry.resolve(message.type_url).FromString(message.value)
        except (UnknownTypeError, DecodeError):
            return
        _repack(inner)
        message.value = inner.SerializeToString(deterministic=True)
        return
    for field, value in message.ListFields():
        if field.cpp_type in _FLOATING:
            _canonical_nans(message, field, value)
            continue
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            entry_value = field.message_type.fields_by_name["value"]
            if entry_value.message_type is not None:
                for item in value.values():
                    _repack(item)
            elif entry_value.cpp_type in _FLOATING:
                for key, item in list(value.items()):
                    if math.isnan(item):
                        value[key] = math.nan
        elif is_repeated(field):
            for item in value:
                _repack(item)
        else:
            _repack(value)


def _canonical_nans(message: Message, field: FieldDescriptor, value: Any) -> None:
    """NaNs as Python's one NaN: no JSON or text keeps a NaN's payload bits (map values
    are made so in _repack)."""
    if is_repeated(field):
        if any(math.isnan(item) for item in value):
            items = [math.nan if math.isnan(item) else item for item in value]
            del value[:]
            value.extend(items)
    elif math.isnan(value):
        setattr(message, field.name, math.nan)


def same_value(a: Message, b: Message) -> bool:
    """Equal values: equal canonical bytes."""
    return to_binary(canonical(a)) == to_binary(canonical(b))


def _text_round_trip(operation: Operation) -> None:
    """Text output, if there is one, reads back to the same value, and is then a fixpoint."""
    try:
        text = to_text(operation)
    except ConversionError:
        return
    again: Operation = from_text(text)
    assert same_value(again, operation), (text, to_text(again))
    assert to_text(from_text(to_text(again))) == to_text(again)


def check_json(data: bytes) -> None:
    try:
        operation = from_json(data)
    except ConversionError:
        return
    # Whatever JSON accepts, JSON can write: the codec refuses on input what it would refuse
    # on output.
    text = to_json(operation)
    assert to_json(from_json(text)) == text
    _text_round_trip(operation)


def check_binary(data: bytes) -> None:
    try:
        operation: Operation = from_binary(data)
    except ConversionError:
        return
    _json_round_trip(operation)
    _text_round_trip(operation)


def check_text(data: bytes) -> None:
    try:
        operation: Operation = from_text(data)
    except ConversionError:
        return
    # Whatever text accepts, text can write back.
    text = to_text(operation)
    assert same_value(from_text(text), operation), text
    _json_round_trip(operation)
