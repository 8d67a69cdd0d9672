"""The documented JSON shape: proto3 JSON with camelCase keys, for Operation and any message."""

from __future__ import annotations

import weakref
from typing import Any, TypeAlias, TypeVar, overload

from google.protobuf import duration_pb2, field_mask_pb2, struct_pb2, timestamp_pb2, wrappers_pb2
from google.protobuf.message import Message

from ._codec import Codec, dumps
from ._operation import Operation
from ._registry import TypeRegistry

__all__ = ["from_dict", "from_json", "to_dict", "to_json"]

M = TypeVar("M", bound=Message)

JsonValue: TypeAlias = "dict[str, Any] | list[Any] | str | int | float | bool | None"
"""Any JSON value, as ``json.loads`` gives it."""

# The well-known types whose JSON form is not an object (proto3 JSON's special cases).
_StringForm: TypeAlias = (
    "timestamp_pb2.Timestamp | duration_pb2.Duration | field_mask_pb2.FieldMask"
    " | wrappers_pb2.StringValue | wrappers_pb2.BytesValue"
    " | wrappers_pb2.Int64Value | wrappers_pb2.UInt64Value"
)
_ScalarForm: TypeAlias = (
    "struct_pb2.Value | wrappers_pb2.BoolValue | wrappers_pb2.Int32Value"
    " | wrappers_pb2.UInt32Value | wrappers_pb2.FloatValue | wrappers_pb2.DoubleValue"
)

# Codecs hold only their registry and options, so each is made once: those of the default
# registry here, those of other registries for as long as the registry lives (a stream
# converts every line with the same one).
_DEFAULT_CODECS: dict[tuple[bool, bool, bool], Codec] = {}
_CODECS: weakref.WeakKeyDictionary[TypeRegistry, dict[tuple[bool, bool, bool], Codec]] = (
    weakref.WeakKeyDictionary()
)


def _codec(
    registry: TypeRegistry | None,
    ignore_unknown_fields: bool,
    emit_unpopulated: bool,
    omit_output_only: bool,
) -> Codec:
    key = (ignore_unknown_fields, emit_unpopulated, omit_output_only)
    if registry is None:
        codecs = _DEFAULT_CODECS
    else:
        try:
            codecs = _CODECS[registry]
        except KeyError:
            codecs = _CODECS.setdefault(registry, {})
    codec = codecs.get(key)
    if codec is None:
        codec = codecs[key] = Codec(
            registry,
            ignore_unknown_fields=ignore_unknown_fields,
            emit_unpopulated=emit_unpopulated,
            omit_output_only=omit_output_only,
        )
    return codec


@overload
def from_json(
    text: str | bytes,
    *,
    registry: TypeRegistry | None = ...,
    ignore_unknown_fields: bool = ...,
) -> Operation: ...
@overload
def from_json(
    text: str | bytes,
    *,
    message_type: type[M],
    registry: TypeRegistry | None = ...,
    ignore_unknown_fields: bool = ...,
) -> M: ...
def from_json(
    text: str | bytes,
    *,
    message_type: type[Message] = Operation,
    registry: TypeRegistry | None = None,
    ignore_unknown_fields: bool = False,
) -> Message:
    """Read JSON text (str, or UTF-8 bytes) into a new message, an Operation by default.

    Accepts camelCase and snake_case keys, ``null`` for "not set", and the every-field style
    of a gRPC-to-REST gateway. Raises ConversionError, with the JSON path of the problem.
    """
    return _codec(registry, ignore_unknown_fields, False, False).decode_text(text, message_type)


@overload
def from_dict(
    obj: Any,
    *,
    registry: TypeRegistry | None = ...,
    ignore_unknown_fields: bool = ...,
) -> Operation: ...
@overload
def from_dict(
    obj: Any,
    *,
    message_type: type[M],
    registry: TypeRegistry | None = ...,
    ignore_unknown_fields: bool = ...,
) -> M: ...
def from_dict(
    obj: Any,
    *,
    message_type: type[Message] = Operation,
    registry: TypeRegistry | None = None,
    ignore_unknown_fields: bool = False,
) -> Message:
    """Read a JSON value (as ``json.loads`` gives it) into a new message.

    The input is only read, never changed; on error no message is returned.
    """
    return _codec(registry, ignore_unknown_fields, False, False).decode(obj, message_type)


# Subclasses of Message whose JSON form is not an object come first: mypy calls that an
# overlap, and it is exactly what is meant.
@overload
def to_dict(  # type: ignore[overload-overlap]
    message: _StringForm,
    *,
    registry: TypeRegistry | None = ...,
    emit_unpopulated: bool = ...,
    omit_output_only: bool = ...,
) -> str: ...
@overload
def to_dict(  # type: ignore[overload-overlap]
    message: struct_pb2.ListValue,
    *,
    registry: TypeRegistry | None = ...,
    emit_unpopulated: bool = ...,
    omit_output_only: bool = ...,
) -> list[Any]: ...
@overload
def to_dict(  # type: ignore[overload-overlap]
    message: _ScalarForm,
    *,
    registry: TypeRegistry | None = ...,
    emit_unpopulated: bool = ...,
    omit_output_only: bool = ...,
) -> JsonValue: ...
@overload
def to_dict(
    message: Message,
    *,
    registry: TypeRegistry | None = ...,
    emit_unpopulated: bool = ...,
    omit_output_only: bool = ...,
) -> dict[str, Any]: ...
def to_dict(
    message: Message,
    *,
    registry: TypeRegistry | None = None,
    emit_unpopulated: bool = False,
    omit_output_only: bool = False,
) -> JsonValue:
    """The JSON value of a message: the same value as json_format.MessageToDict gives.

    An object (a dict) for every message but the well-known types with a JSON form of their
    own: a string for Timestamp, Duration, FieldMask and the 64-bit, string and bytes
    wrappers, a list for ListValue, any JSON value for Value and the other wrappers.

    ``emit_unpopulated=True`` writes every field as a gRPC-to-REST gateway does by default
    (unset messages as null, scalars as their default; oneof members only when set).
    ``omit_output_only=True`` is the request form: fields annotated
    ``(google.api.field_behavior) = OUTPUT_ONLY`` are left out, at every level.
    """
    if not isinstance(message, Message):
        raise TypeError(f"expected a protobuf message, got {type(message).__name__}")
    value: JsonValue = _codec(registry, False, emit_unpopulated, omit_output_only).encode(message)
    return value


def to_json(
    message: Message,
    *,
    registry: TypeRegistry | None = None,
    emit_unpopulated: bool = False,
    omit_output_only: bool = False,
    indent: int | None = None,
) -> str:
    """The JSON text of a message: compact unless ``indent`` is given; see ``to_dict``."""
    if not isinstance(message, Message):
        raise TypeError(f"expected a protobuf message, got {type(message).__name__}")
    codec = _codec(registry, False, emit_unpopulated, omit_output_only)
    if indent is None:
        return codec.encode_text(message).decode()
    return dumps(codec.encode(message), indent)
