"""Comparing messages by value: equal exactly when their fields are, Any payloads included."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from v1op_pb._codec.descriptors import is_repeated
from v1op_pb._codec.wkt import WELL_KNOWN

__all__ = ["assert_same", "canonical", "default_resolve", "sorted_maps"]

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


def _map_key_order(field: FieldDescriptor) -> Callable[[str], object]:
    """How our codec orders a map's JSON keys: integers numerically, false before true,
    strings by code point."""
    key_type = field.message_type.fields_by_name["key"].type
    if key_type == FieldDescriptor.TYPE_BOOL:
        return lambda key: key == "true"
    if key_type == FieldDescriptor.TYPE_STRING:
        return lambda key: key
    return int


def sorted_maps(value: Any, descriptor: Descriptor, resolve: Resolve = default_resolve) -> Any:
    """A JSON value of a message of this type (as json_format.MessageToDict gives it, map
    entries in the map's own order) with every map's and Struct's keys sorted as our codec
    writes them, at every level, Any payloads included: what to compare our text with."""
    name = descriptor.full_name
    if name == "google.protobuf.Struct":
        return {k: _sorted_value(value[k]) for k in sorted(value)}
    if name in ("google.protobuf.Value", "google.protobuf.ListValue"):
        return _sorted_value(value)
    if name == "google.protobuf.Any":
        if "@type" not in value:
            return value
        inner = resolve(value["@type"]).DESCRIPTOR
        if inner.full_name in WELL_KNOWN:
            return {**value, "value": sorted_maps(value["value"], inner, resolve)}
        return sorted_maps(value, inner, resolve)
    if not isinstance(value, dict):
        return value
    fields = {}
    for field in descriptor.fields:
        fields[field.json_name] = fields[field.name] = field
    out = {}
    for key, item in value.items():
        field = fields.get(key)
        if field is None or field.message_type is None or item is None:
            out[key] = item
        elif field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            order = _map_key_order(field)
            out[key] = {
                k: (
                    sorted_maps(item[k], value_field.message_type, resolve)
                    if value_field.message_type is not None
                    else item[k]
                )
                for k in sorted(item, key=order)
            }
        elif is_repeated(field):
            out[key] = [sorted_maps(x, field.message_type, resolve) for x in item]
        else:
            out[key] = sorted_maps(item, field.message_type, resolve)
    return out


def _sorted_value(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted_value(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted_value(x) for x in value]
    return value
