"""The JSON encoder of one message type, compiled once per descriptor (the shared pieces are
in ``compile``).

An encoder reads the fields in number order and writes each one that is present: a scalar
as itself or through its scalar encoder, a message through that type's compiled function,
repeated messages and maps through the helpers below. A message with extensions set takes
the general path, ``_ListFieldsEncoder``, which writes the fields in ListFields order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from .._errors import ConversionError
from .compile import (
    Access,
    CodecLike,
    Links,
    MessageEncoder,
    Source,
    enum_of,
    has_presence,
    is_map,
    is_message,
    is_output_only,
    json_key,
    message_of,
    real_oneof,
)
from .descriptors import is_repeated
from .scalars import SCALAR_ENCODERS, encode_map_key, enum_encoder

__all__ = ["compile_encoder", "encode_repeated_messages"]

_T = FieldDescriptor
_FLOATS = (_T.TYPE_FLOAT, _T.TYPE_DOUBLE)
# Scalars whose JSON value is the field value itself.
_IDENTITY = frozenset(
    (_T.TYPE_INT32, _T.TYPE_SINT32, _T.TYPE_SFIXED32, _T.TYPE_UINT32, _T.TYPE_FIXED32)
) | {_T.TYPE_BOOL, _T.TYPE_STRING}
_INT64S = frozenset(
    (_T.TYPE_INT64, _T.TYPE_SINT64, _T.TYPE_SFIXED64, _T.TYPE_UINT64, _T.TYPE_FIXED64)
)


def _encode_value_expression(
    source: Source, field: FieldDescriptor, options: tuple[bool, bool, bool]
) -> str:
    """An expression for the JSON value of ``field`` given its value ``v`` (as getattr or
    ListFields gives it)."""
    links = source.links
    if is_map(field):
        value_field = message_of(field).fields_by_name["value"]
        helper = source.name(_encode_map, "encode_map")
        if is_message(value_field):
            value_type = message_of(value_field)
            encoder = source.lazy(lambda: links.encoder(value_type, *options), "E")
            return f"{helper}(codec, v, {encoder}, True, depth)"
        encoder = source.name(_element_encoder(value_field), "enc")
        return f"{helper}(codec, v, {encoder}, False, depth)"
    if is_message(field):
        message_type = message_of(field)
        encoder = source.lazy(lambda: links.encoder(message_type, *options), "E")
        if is_repeated(field):
            helper = source.name(encode_repeated_messages, "encode_messages")
            return f"{helper}(codec, v, {encoder}, depth)"
        return f"{encoder}(codec, v, depth + 1)"
    if field.type in _IDENTITY:
        return "list(v)" if is_repeated(field) else "v"
    if field.type in _INT64S:
        return "[str(x) for x in v]" if is_repeated(field) else "str(v)"
    encoder = source.name(_element_encoder(field), "enc")
    return f"[{encoder}(x) for x in v]" if is_repeated(field) else f"{encoder}(v)"


def _element_encoder(field: FieldDescriptor) -> Callable[[Any], Any]:
    if field.type == _T.TYPE_ENUM:
        return enum_encoder(enum_of(field))
    return SCALAR_ENCODERS[field.type]


def compile_encoder(
    descriptor: Descriptor,
    links: Links,
    emit_unpopulated: bool,
    omit_output_only: bool,
    check_unknown: bool,
) -> MessageEncoder:
    """(codec, message, depth) -> dict: the JSON object of a message.

    Fields come out in number order, as json_format writes them (declaration order with
    ``emit_unpopulated``, as grpc-gateway does); with ``check_unknown`` every message is
    checked for unknown fields before it is written."""
    source = Source(links)
    options = (emit_unpopulated, omit_output_only, check_unknown)
    fields = list(descriptor.fields)
    if not emit_unpopulated:
        fields.sort(key=lambda f: f.number)
    source.add(0, "def encode(codec, m, depth):")
    source.add(1, "if depth > MAX_DEPTH:")
    source.add(2, "raise too_deep()")
    if check_unknown:
        source.add(1, "codec.unknown_fields_in(m)")
    if descriptor.is_extendable:
        # Extensions interleave with the fields in ListFields order; rare enough to take the
        # general path whenever one is set.
        general = source.name(_ListFieldsEncoder(descriptor, links, options), "general")
        source.add(1, "if m.Extensions:")
        source.add(2, f"return {general}(codec, m, depth)")
    source.add(1, "out = {}")
    for oneof in descriptor.oneofs:
        if any(real_oneof(f) is oneof for f in oneof.fields):
            source.add(1, f"which_{oneof.index} = m.WhichOneof({oneof.name!r})")
    for field in fields:
        if omit_output_only and is_output_only(field):
            continue
        _encode_field(source, field, options, emit_unpopulated)
    source.add(1, "return out")
    return cast(
        MessageEncoder, source.build("encode", f"<v1op_pb encoder of {descriptor.full_name}>")
    )


def _encode_field(
    source: Source,
    field: FieldDescriptor,
    options: tuple[bool, bool, bool],
    emit_unpopulated: bool,
) -> None:
    access = Access(source, field)
    key = repr(json_key(field))
    value = _encode_value_expression(source, field, options)
    oneof = real_oneof(field)
    if oneof is not None:
        source.add(1, f"if which_{oneof.index} == {field.name!r}:")
        source.add(2, f"v = {access.get}")
    elif has_presence(field):
        source.add(1, f"if m.HasField({field.name!r}):")
        source.add(2, f"v = {access.get}")
    else:
        source.add(1, f"v = {access.get}")
        if emit_unpopulated:
            source.add(1, "if True:")
        elif field.type in _FLOATS and not is_repeated(field):
            source.add(1, "if v or negative_zero(v):")  # -0.0 is set, as ListFields has it
        else:
            source.add(1, "if v:")
    source.add(2, "try:")
    source.add(3, f"out[{key}] = {value}")
    source.add(2, "except ConversionError as e:")
    source.add(3, f"e.prepend({key})")
    source.add(3, "raise")
    if emit_unpopulated and oneof is None and has_presence(field) and not field.containing_oneof:
        source.add(1, "else:")
        source.add(2, f"out[{key}] = {_unpopulated(source, field)}")


def _unpopulated(source: Source, field: FieldDescriptor) -> str:
    """The JSON of an unset field with presence, as emit_unpopulated writes it."""
    if is_message(field):
        return "None"
    return source.name(_element_encoder(field)(field.default_value), "default")


class _ListFieldsEncoder:
    """The general encoder for a message that has extensions set: the fields in the order
    ListFields gives them, each through its own compiled function."""

    def __init__(
        self, descriptor: Descriptor, links: Links, options: tuple[bool, bool, bool]
    ) -> None:
        self.descriptor = descriptor
        self.links = links
        self.options = options
        self.by_field: dict[FieldDescriptor, tuple[str, bool, Any]] = {}

    def _field(self, field: FieldDescriptor) -> tuple[str, bool, Any]:
        compiled = self.by_field.get(field)
        if compiled is None:
            source = Source(self.links)
            source.add(0, "def encode(codec, v, depth):")
            source.add(1, f"return {_encode_value_expression(source, field, self.options)}")
            function = source.build("encode", f"<v1op_pb encoder of {field.full_name}>")
            compiled = self.by_field[field] = (json_key(field), is_output_only(field), function)
        return compiled

    def __call__(self, codec: CodecLike, message: Message, depth: int) -> dict[str, Any]:
        emit_unpopulated, omit_output_only, _ = self.options
        out: dict[str, Any] = {}
        listed = message.ListFields()
        if emit_unpopulated:
            present = {fd.number: value for fd, value in listed if not fd.is_extension}
            for field in self.descriptor.fields:
                key, output_only, encode = self._field(field)
                if omit_output_only and output_only:
                    continue
                if field.number in present:
                    out[key] = _encode_one(key, encode, codec, present[field.number], depth)
                elif field.containing_oneof is None:
                    if has_presence(field):
                        out[key] = (
                            None
                            if is_message(field)
                            else _element_encoder(field)(field.default_value)
                        )
                    else:
                        out[key] = _encode_one(
                            key, encode, codec, getattr(message, field.name), depth
                        )
            listed = [(fd, value) for fd, value in listed if fd.is_extension]
        for field, value in listed:
            key, output_only, encode = self._field(field)
            if omit_output_only and output_only:
                continue
            out[key] = _encode_one(key, encode, codec, value, depth)
        return out


def _encode_one(key: str, encode: Any, codec: CodecLike, value: Any, depth: int) -> Any:
    try:
        return encode(codec, value, depth)
    except ConversionError as e:
        e.prepend(key)
        raise


def encode_repeated_messages(codec: CodecLike, values: Any, encode: Any, depth: int) -> list[Any]:
    out = []
    for index, item in enumerate(values):
        try:
            out.append(encode(codec, item, depth + 1))
        except ConversionError as e:
            e.prepend(index)
            raise
    return out


def _encode_map(
    codec: CodecLike, values: Any, encode: Any, value_is_message: bool, depth: int
) -> dict[str, Any]:
    out = {}
    # Keys sorted (str by code point, integers numerically, False first), as the native
    # core writes them: text the same in every process, unlike the map's own (hash) order.
    for key in sorted(values):  # items() of a protobuf map is the slow generic Mapping one
        item = values[key]
        json_key = key if type(key) is str else encode_map_key(key)
        try:
            out[json_key] = encode(codec, item, depth + 2) if value_is_message else encode(item)
        except ConversionError as e:
            e.prepend(json_key)
            raise
    return out
