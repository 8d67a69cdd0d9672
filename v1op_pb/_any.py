"""Packing messages into google.protobuf.Any and reading them back typed."""

from __future__ import annotations

from typing import TypeVar, overload

from google.protobuf import any_pb2
from google.protobuf.message import DecodeError, Message

from ._errors import ConversionError, excerpt
from ._registry import TypeRegistry, UnknownTypeError, default_registry, type_name_of

__all__ = ["pack", "unpack"]

DEFAULT_TYPE_URL_PREFIX = "type.googleapis.com/"

M = TypeVar("M", bound=Message)


def pack(message: Message, type_url_prefix: str = DEFAULT_TYPE_URL_PREFIX) -> any_pb2.Any:
    """Pack a message into a new Any.

    The bytes are serialized deterministically, so equal messages (maps included) always
    pack to equal Anys.
    """
    if not isinstance(message, Message):
        raise TypeError(f"expected a protobuf message, got {type(message).__name__}")
    prefix = type_url_prefix if type_url_prefix.endswith("/") else type_url_prefix + "/"
    return any_pb2.Any(
        type_url=prefix + message.DESCRIPTOR.full_name,
        value=message.SerializeToString(deterministic=True),
    )


@overload
def unpack(any_message: any_pb2.Any, registry: TypeRegistry | None = ...) -> Message: ...
@overload
def unpack(
    any_message: any_pb2.Any, registry: TypeRegistry | None = ..., *, message_type: type[M]
) -> M: ...
def unpack(
    any_message: any_pb2.Any,
    registry: TypeRegistry | None = None,
    *,
    message_type: type[Message] | None = None,
) -> Message:
    """The message inside an Any, as an instance of its own class.

    The class comes from the registry (the default one unless given), or is
    ``message_type`` when given: then the Any must hold that type (a type checker then knows
    the result is one). An unknown type URL, another type than ``message_type``, or bytes
    that are not a valid message of the type raise ConversionError.
    """
    cls: type[Message]
    if message_type is not None:
        expected = message_type.DESCRIPTOR.full_name
        if type_name_of(any_message.type_url) != expected:
            raise ConversionError(
                f"expected an Any holding {expected}, got type URL {excerpt(any_message.type_url)}",
                ["@type"],
            )
        cls = message_type
    else:
        registry = registry if registry is not None else default_registry
        try:
            cls = registry.resolve(any_message.type_url)
        except UnknownTypeError as e:
            raise ConversionError(str(e), ["@type"]) from e
    try:
        return cls.FromString(any_message.value)
    except DecodeError as e:
        raise ConversionError(
            f"Any value is not a valid {cls.DESCRIPTOR.full_name} in binary form: {e}"
        ) from e
