"""Binary protobuf and text format, with the same error type as JSON."""

from __future__ import annotations

from typing import TypeVar, overload

from google.protobuf import any_pb2, text_format, unknown_fields
from google.protobuf.message import DecodeError, Message

from ._codec.descriptors import is_repeated
from ._errors import ConversionError
from ._operation import Operation
from ._registry import TypeRegistry, UnknownTypeError, default_registry

__all__ = ["from_binary", "from_text", "to_binary", "to_text"]

M = TypeVar("M", bound=Message)


@overload
def from_binary(data: bytes) -> Operation: ...
@overload
def from_binary(data: bytes, *, message_type: type[M]) -> M: ...
def from_binary(data: bytes, *, message_type: type[Message] = Operation) -> Message:
    """Read the binary protobuf encoding of a message."""
    message = message_type()
    try:
        message.ParseFromString(data)
    except DecodeError as e:
        raise ConversionError(f"not a valid binary {message_type.DESCRIPTOR.full_name}: {e}") from e
    return message


def to_binary(message: Message) -> bytes:
    """The binary encoding, deterministic: equal messages give equal bytes."""
    return message.SerializeToString(deterministic=True)


@overload
def from_text(text: str | bytes, *, registry: TypeRegistry | None = ...) -> Operation: ...
@overload
def from_text(
    text: str | bytes, *, message_type: type[M], registry: TypeRegistry | None = ...
) -> M: ...
def from_text(
    text: str | bytes,
    *,
    message_type: type[Message] = Operation,
    registry: TypeRegistry | None = None,
) -> Message:
    """Read protobuf text format; an Any may be written expanded (``[type.googleapis.com/...]
    { ... }``) when the registry knows its type. Expanded Anys are packed deterministically,
    as JSON input is."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as e:
            raise ConversionError(f"input is not UTF-8: invalid byte at offset {e.start}") from e
    registry = registry or default_registry
    message = message_type()
    try:
        # The registry's pool is a stand-in with the one method text_format calls.
        pool = registry.descriptor_pool()
        text_format.Parse(text, message, descriptor_pool=pool)  # type: ignore[arg-type]
    except text_format.ParseError as e:
        raise ConversionError(f"not valid text format: {e}") from e
    _walk(message, registry, [], repack=True)
    return message


def to_text(message: Message, *, registry: TypeRegistry | None = None) -> str:
    """Protobuf text format, Any values expanded where their type is known.

    A message holding fields its schema does not know (anywhere, packed Anys included) is
    refused: text format would drop them.
    """
    registry = registry or default_registry
    _walk(message, registry, [], repack=False)
    pool = registry.descriptor_pool()
    return text_format.MessageToString(message, descriptor_pool=pool, as_utf8=True)  # type: ignore[arg-type]


def _walk(message: Message, registry: TypeRegistry, path: list[str | int], repack: bool) -> None:
    """Check that no message (packed ones included) holds unknown fields; with ``repack``,
    re-serialize every packed message deterministically."""
    if len(unknown_fields.UnknownFieldSet(message)):
        raise ConversionError(
            f"{message.DESCRIPTOR.full_name} carries fields its schema does not know; text "
            "format would drop them",
            path,
        )
    if isinstance(message, any_pb2.Any) and message.type_url:
        try:
            cls = registry.resolve(message.type_url)
        except UnknownTypeError:
            return  # text keeps it as type_url and bytes, losing nothing
        try:
            inner = cls.FromString(message.value)
        except DecodeError as e:
            raise ConversionError(
                f"Any value is not a valid {cls.DESCRIPTOR.full_name} in binary form: {e}", path
            ) from e
        _walk(inner, registry, path, repack)
        if repack:
            message.value = inner.SerializeToString(deterministic=True)
        return
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        name = field.json_name
        if field.message_type.GetOptions().map_entry:
            if field.message_type.fields_by_name["value"].message_type is None:
                continue
            for key, item in value.items():
                _walk(item, registry, [*path, name, str(key)], repack)
        elif is_repeated(field):
            for index, item in enumerate(value):
                _walk(item, registry, [*path, name, index], repack)
        else:
            _walk(value, registry, [*path, name], repack)
