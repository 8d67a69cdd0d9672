"""Comparing messages by value: equal exactly when their fields are, Any payloads included."""

from __future__ import annotations

from collections.abc import Callable

from google.protobuf import descriptor_pool, message_factory
from google.protobuf.message import Message

from v1op_pb._codec.descriptors import is_repeated

__all__ = ["assert_same", "canonical", "default_resolve"]

Resolve = Callable[[str], type[Message]]


def default_resolve(type_url: str) -> type[Message]:
    name = type_url.rpartition("/")[2]
    descriptor = descriptor_pool.Default().FindMessageTypeByName(name)
    return message_factory.GetMessageClass(descriptor)


def _canonicalize(message: Message, resolve: Resolve) -> None:
    """Re-pack every Any deterministically, in place.

    json_format packs an Any with SerializeToString(), whose map order is not fixed, so two
    equal messages may differ in Any.value bytes; comparing after this is comparing values.
    """
    if message.DESCRIPTOR.full_name == "google.protobuf.Any":
        if message.type_url:
            inner = resolve(message.type_url).FromString(message.value)
            _canonicalize(inner, resolve)
            message.value = inner.SerializePartialToString(deterministic=True)
        return
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            if field.message_type.fields_by_name["value"].message_type is not None:
                for item in value.values():
                    _canonicalize(item, resolve)
        elif is_repeated(field):
            for item in value:
                _canonicalize(item, resolve)
        else:
            _canonicalize(value, resolve)


def canonical(message: Message, resolve: Resolve = default_resolve) -> bytes:
    """Bytes equal exactly when the messages are: -0.0 differs from 0.0, a NaN equals itself."""
    copy = type(message)()
    copy.CopyFrom(message)
    _canonicalize(copy, resolve)
    return copy.SerializePartialToString(deterministic=True)


def assert_same(actual: Message, expected: Message, resolve: Resolve = default_resolve) -> None:
    assert type(actual) is type(expected)
    assert canonical(actual, resolve) == canonical(expected, resolve), f"\n{actual}\n!=\n{expected}"
