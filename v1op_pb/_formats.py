"""Binary protobuf and text format, with the same error type as JSON."""

from __future__ import annotations

from typing import TypeVar

from google.protobuf import text_format, unknown_fields
from google.protobuf.message import DecodeError, Message

from ._errors import ConversionError
from ._operation import Operation
from ._registry import TypeRegistry, default_registry

__all__ = ["from_binary", "from_text", "to_binary", "to_text"]

M = TypeVar("M", bound=Message)


def from_binary(data: bytes, *, message_type: type[M] = Operation) -> M:  # type: ignore[assignment]
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


def from_text(
    text: str | bytes,
    *,
    message_type: type[M] = Operation,  # type: ignore[assignment]
    registry: TypeRegistry | None = None,
) -> M:
    """Read protobuf text format; an Any may be written expanded (``[type.googleapis.com/...]
    { ... }``) when the registry's pool knows its type."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as e:
            raise ConversionError(f"input is not UTF-8: invalid byte at offset {e.start}") from e
    pool = (registry or default_registry).descriptor_pool()
    message = message_type()
    try:
        text_format.Parse(text, message, descriptor_pool=pool)
    except text_format.ParseError as e:
        raise ConversionError(f"not valid text format: {e}") from e
    return message


def to_text(message: Message, *, registry: TypeRegistry | None = None) -> str:
    """Protobuf text format, Any values expanded where their type is known."""
    path = unknown_field_path(message)
    if path is not None:
        raise ConversionError(
            "the message carries fields its schema does not know; text format would drop them",
            path,
        )
    pool = (registry or default_registry).descriptor_pool()
    return text_format.MessageToString(message, descriptor_pool=pool, as_utf8=True)


def unknown_field_path(message: Message) -> list[str | int] | None:
    """The path (JSON names) of the first message holding unknown fields, or None."""
    if len(unknown_fields.UnknownFieldSet(message)):
        return []
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            if field.message_type.fields_by_name["value"].message_type is None:
                continue
            items = [(str(k), v) for k, v in value.items()]
        elif field.is_repeated:
            items = list(enumerate(value))
        else:
            items = [(None, value)]
        for key, item in items:
            inner = unknown_field_path(item)
            if inner is not None:
                return [field.json_name] + ([key] if key is not None else []) + inner
    return None
