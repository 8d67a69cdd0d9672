"""The JSON decoder of one message type, compiled once per descriptor (the shared pieces are
in ``compile``).

A decoder is a loop over the keys of the JSON object that maps each key to its field's index
and runs straight-line code for that field: a scalar with an inline fast check, an enum, a
message (a call to that type's compiled function), and calls to the helpers below for
repeated fields and maps. Keys that name no field (extensions, unknown keys) and the errors
that look back at earlier keys are kept out of the loop, in ``_KeyPlan``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from .._errors import ConversionError, excerpt
from .compile import (
    Access,
    CodecLike,
    Links,
    Source,
    enum_of,
    is_map,
    is_message,
    message_of,
    real_oneof,
)
from .descriptors import is_repeated
from .jsontext import MAX_DEPTH, too_deep
from .scalars import (
    SCALAR_DECODERS,
    UnknownEnumName,
    decode_map_key,
    decode_string,
    describe,
    enum_decoder,
    expect_object,
)

__all__ = ["compile_decoder"]

_T = FieldDescriptor
_VALUE = "google.protobuf.Value"
_NULL_VALUE = "google.protobuf.NullValue"
# Well-known types whose unit always sets a field of the message, so that it needs no
# SetInParent to be present in its parent.
_ALWAYS_SETS_A_FIELD = frozenset(
    ["google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.Value"]
    + [
        f"google.protobuf.{kind}Value"
        for kind in (
            "Double",
            "Float",
            "Int64",
            "UInt64",
            "Int32",
            "UInt32",
            "Bool",
            "String",
            "Bytes",
        )
    ]
)
# Inline fast paths for the commonest scalars: the value as json.loads gives it when it is
# already right; anything else goes to the full decoder, which converts or refuses it.
_FAST_CHECKS = {
    _T.TYPE_STRING: "type(v) is str and v.isascii()",
    _T.TYPE_BOOL: "v is True or v is False",
    _T.TYPE_INT32: "type(v) is int and -2147483648 <= v <= 2147483647",
    _T.TYPE_SINT32: "type(v) is int and -2147483648 <= v <= 2147483647",
    _T.TYPE_SFIXED32: "type(v) is int and -2147483648 <= v <= 2147483647",
    _T.TYPE_UINT32: "type(v) is int and 0 <= v <= 4294967295",
    _T.TYPE_FIXED32: "type(v) is int and 0 <= v <= 4294967295",
}


def _element_decoder(field: FieldDescriptor) -> Callable[[Any], Any]:
    if field.type == _T.TYPE_ENUM:
        return enum_decoder(enum_of(field))
    return SCALAR_DECODERS[field.type]


def _decode_field(source: Source, field: FieldDescriptor, access: Access, indent: int) -> None:
    """Statements that set ``field`` of ``m`` from the non-null JSON value ``v``."""
    links = source.links
    if is_map(field):
        entry = message_of(field)
        key_field, value_field = entry.fields_by_name["key"], entry.fields_by_name["value"]
        if is_message(value_field):
            value_type = message_of(value_field)
            value_decoder = source.lazy(lambda: links.decoder(value_type), "D")
            allow_null = value_type.full_name == _VALUE
        else:
            value_decoder = source.name(_element_decoder(value_field), "dec")
            allow_null = False
        helper = source.name(_decode_map, "decode_map")
        key_decoder = source.name(_map_key_decoder(key_field), "key")
        what = source.name(f"a map of {entry.full_name}", "what")
        value_is_message = is_message(value_field)
        source.add(
            indent,
            f"{helper}(codec, {access.get}, v, {key_decoder}, {value_decoder}, {value_is_message}, "
            f"{allow_null}, {what}, depth)",
        )
    elif is_repeated(field) and is_message(field):
        element_type = message_of(field)
        decoder = source.lazy(lambda: links.decoder(element_type), "D")
        helper = source.name(_decode_repeated_messages, "decode_messages")
        allow_null = element_type.full_name == _VALUE
        source.add(indent, f"{helper}(codec, {access.get}, v, {decoder}, {allow_null}, depth)")
    elif is_repeated(field) and field.type == _T.TYPE_STRING:
        helper = source.name(_decode_repeated_strings, "decode_strings")
        decoder = source.name(_element_decoder(field), "dec")
        source.add(indent, f"{helper}(codec, {access.get}, v, {decoder})")
    elif is_repeated(field):
        helper = source.name(_decode_repeated_scalars, "decode_scalars")
        decoder = source.name(_element_decoder(field), "dec")
        source.add(indent, f"{helper}(codec, {access.get}, v, {decoder})")
    elif is_message(field):
        message_type = message_of(field)
        decoder = source.lazy(lambda: links.decoder(message_type), "D")
        source.add(indent, "if depth >= MAX_DEPTH:")
        source.add(indent + 1, "raise too_deep()")
        if message_type.full_name in _ALWAYS_SETS_A_FIELD:
            source.add(indent, f"{decoder}(codec, {access.get}, v, depth + 1)")
        else:  # {} must still leave the field set
            source.add(indent, f"sub = {access.get}")
            source.add(indent, "sub.SetInParent()")
            source.add(indent, f"{decoder}(codec, sub, v, depth + 1)")
    elif field.type == _T.TYPE_ENUM:
        decoder = source.name(_element_decoder(field), "enum")
        source.add(indent, "try:")
        source.add(indent + 1, access.set(f"{decoder}(v)"))
        source.add(indent, "except UnknownEnumName:")
        source.add(indent + 1, "if not codec.ignore_unknown_fields:")
        source.add(indent + 2, "raise")
    else:
        decoder = source.name(_element_decoder(field), "dec")
        fast = _FAST_CHECKS.get(field.type)
        if fast is None:
            source.add(indent, access.set(f"{decoder}(v)"))
        else:
            source.add(indent, access.set(f"v if {fast} else {decoder}(v)"))


def _null_statement(field: FieldDescriptor, access: Access) -> str | None:
    """What a JSON null sets: most fields stay unset; a Value holds null_value and a
    NullValue enum field holds 0."""
    if is_repeated(field):
        return None
    if field.message_type is not None and field.message_type.full_name == _VALUE:
        return f"{access.get}.null_value = 0"
    if field.enum_type is not None and field.enum_type.full_name == _NULL_VALUE:
        return access.set("0")
    return None


def compile_decoder(descriptor: Descriptor, links: Links) -> Any:
    """(codec, message, json, depth, skip=None) -> None for a message read from an object.

    ``skip`` is a key to pass over (an Any's "@type")."""
    source = Source(links)
    fields = list(descriptor.fields)
    keys: dict[str, int] = {}
    for index, field in enumerate(fields):
        keys[field.name] = index
    for index, field in enumerate(fields):  # the JSON name wins where it equals another's name
        keys[field.json_name] = index
    aliased = {i for i, f in enumerate(fields) if f.name != f.json_name}
    oneofs = {
        oneof.name: bit
        for bit, oneof in enumerate(
            o for o in descriptor.oneofs if any(real_oneof(f) is o for f in o.fields)
        )
    }
    keys_name = source.name(keys, "KEYS")
    plan = source.name(_KeyPlan(descriptor, fields, keys, links), "PLAN")
    source.add(0, "def decode(codec, m, obj, depth, skip=None):")
    source.add(1, "if type(obj) is not dict:")
    source.add(2, f"obj = expect_object(obj, {descriptor.full_name!r})")
    source.add(1, "seen = chosen = 0")
    source.add(1, "for key, v in obj.items():")
    source.add(2, f"i = {keys_name}.get(key)")
    source.add(2, "if i is None:")
    # An Any's "@type" is passed over; a key that is not a string never is (skip may be None).
    source.add(3, "if key != skip or type(key) is not str:")
    source.add(4, f"{plan}.other_key(codec, m, key, v, depth)")
    source.add(3, "continue")
    source.add(2, "try:")
    for index, field in enumerate(fields):
        access = Access(source, field)
        source.add(3, f"{'if' if index == 0 else 'elif'} i == {index}:")
        if index in aliased:
            source.add(4, f"if seen & {1 << index}:")
            source.add(5, f"{plan}.given_twice(obj, key, i)")
            source.add(4, f"seen |= {1 << index}")
        source.add(4, "if v is None:")
        null = _null_statement(field, access)
        if null is not None:
            source.add(5, null)
        source.add(5, "continue")
        oneof = real_oneof(field)
        if oneof is not None:
            bit = 1 << oneofs[oneof.name]
            source.add(4, f"if chosen & {bit}:")
            source.add(5, f"{plan}.oneof_clash(obj, key, i)")
            source.add(4, f"chosen |= {bit}")
        _decode_field(source, field, access, 4)
    if not fields:
        source.add(3, "pass")
    source.add(2, "except ConversionError as e:")
    source.add(3, "e.prepend(key)")
    source.add(3, "raise")
    source.add(2, "except (TypeError, ValueError) as e:")
    source.add(3, f"raise {plan}.refused(i, key, e) from e")
    return source.build("decode", f"<v1op_pb decoder of {descriptor.full_name}>")


class _KeyPlan:
    """The rare cases of a decoder, kept out of the generated loop: keys that name no field
    (extensions, unknown keys) and the errors that need to look back at earlier keys."""

    def __init__(
        self,
        descriptor: Descriptor,
        fields: list[FieldDescriptor],
        keys: dict[str, int],
        links: Links,
    ) -> None:
        self.descriptor = descriptor
        self.fields = fields
        self.keys = keys
        self.links = links

    def other_key(
        self, codec: CodecLike, message: Message, key: Any, value: Any, depth: int
    ) -> None:
        if not isinstance(key, str):  # from_dict of a dict no JSON text could give
            raise ConversionError(
                f"object keys are strings, not {type(key).__name__} {excerpt(key)}", [key]
            )
        extension = None
        if key.startswith("[") and key.endswith("]"):
            extension = _extension(self.descriptor, key[1:-1], self.links)
        if extension is None:
            if codec.ignore_unknown_fields:
                return
            raise ConversionError(
                f"unknown field {excerpt(key)} of {self.descriptor.full_name}; known fields: "
                + ", ".join(f.json_name for f in self.fields),
                [key],
            )
        name, decode = extension
        try:
            decode(codec, message, value, depth)
        except ConversionError as e:
            e.prepend(key)
            raise
        except (TypeError, ValueError) as e:
            raise ConversionError(f"invalid value for {name!r}: {e}", [key]) from e

    # given_twice and oneof_clash raise inside the decoder's try, which adds the key.

    def given_twice(self, obj: dict[str, Any], key: str, index: int) -> None:
        first = next(k for k in obj if self.keys.get(k) == index)
        raise ConversionError(
            f"field {self.fields[index].name!r} is given twice, "
            f"as {excerpt(first)} and {excerpt(key)}"
        )

    def oneof_clash(self, obj: dict[str, Any], key: str, index: int) -> None:
        oneof = self.fields[index].containing_oneof
        assert oneof is not None  # only members of a oneof clash
        other = next(
            k
            for k, v in obj.items()
            if v is not None
            and self.keys.get(k) is not None
            and self.fields[self.keys[k]].containing_oneof is oneof
        )
        raise ConversionError(
            f"{excerpt(other)} and {excerpt(key)} are both set, but they belong to the oneof "
            f"{oneof.name!r} of {self.descriptor.full_name}: at most one may be set"
        )

    def refused(self, index: int, key: str, error: Exception) -> ConversionError:
        # A value the runtime refuses after our checks passed; keep it a ConversionError
        # with its place.
        return ConversionError(f"invalid value for {self.fields[index].name!r}: {error}", [key])


_EXTENSION_DECODERS: dict[FieldDescriptor, Any] = {}


def _extension(descriptor: Descriptor, full_name: str, links: Links) -> tuple[str, Any] | None:
    """The name and decoder of the extension of ``descriptor`` called ``full_name``, if any."""
    if not descriptor.is_extendable:
        return None
    try:
        extension = descriptor.file.pool.FindExtensionByName(full_name)
    except KeyError:
        return None
    if extension.containing_type is not descriptor:
        return None
    decoder = _EXTENSION_DECODERS.get(extension)
    if decoder is None:
        source = Source(links)
        access = Access(source, extension)
        source.add(0, "def decode(codec, m, v, depth):")
        source.add(1, "if v is None:")
        source.add(2, _null_statement(extension, access) or "pass")
        source.add(2, "return")
        _decode_field(source, extension, access, 1)
        decoder = _EXTENSION_DECODERS[extension] = source.build(
            "decode", f"<v1op_pb decoder of [{extension.full_name}]>"
        )
    return extension.name, decoder


def _array(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return value  # type: ignore[return-value]
    raise ConversionError(f"expected an array, got {describe(value)}")


def _decode_repeated_scalars(codec: CodecLike, container: Any, value: Any, decode: Any) -> None:
    decoded = []
    for index, item in enumerate(_array(value)):
        try:
            if item is None:
                raise ConversionError("null is not allowed as an element of a repeated field")
            decoded.append(decode(item))
        except UnknownEnumName as e:
            if codec.ignore_unknown_fields:
                continue  # json_format drops the element too
            e.prepend(index)
            raise
        except ConversionError as e:
            e.prepend(index)
            raise
    container.extend(decoded)


def _decode_repeated_strings(codec: CodecLike, container: Any, value: Any, decode: Any) -> None:
    # ASCII strings need no check; map() keeps the test in C. Anything else (another type,
    # None, non-ASCII text to check for unpaired surrogates) goes the general way.
    if type(value) is list:
        try:
            plain = all(map(str.isascii, value))
        except TypeError:  # an element that is not a str
            plain = False
        if plain:
            container.extend(value)
            return
    _decode_repeated_scalars(codec, container, value, decode)


def _decode_repeated_messages(
    codec: CodecLike, container: Any, value: Any, decode: Any, allow_null: bool, depth: int
) -> None:
    for index, item in enumerate(_array(value)):
        try:
            if item is None and not allow_null:
                raise ConversionError("null is not allowed as an element of a repeated field")
            if depth >= MAX_DEPTH:
                raise too_deep()
            decode(codec, container.add(), item, depth + 1)
        except ConversionError as e:
            e.prepend(index)
            raise


def _map_key_decoder(field: FieldDescriptor) -> Callable[[str], Any]:
    if field.type == _T.TYPE_STRING:
        return decode_string
    return lambda key: decode_map_key(field, key)


def _decode_map(
    codec: CodecLike,
    container: Any,
    value: Any,
    decode_key: Any,
    decode_value: Any,
    value_is_message: bool,
    allow_null: bool,
    what: str,
    depth: int,
) -> None:
    obj = value if type(value) is dict else expect_object(value, what)
    for key, item in obj.items():
        try:
            map_key = decode_key(key)
            if item is None and not allow_null:
                raise ConversionError("null is not allowed as a map value")
            if value_is_message:
                # +2 for the map entry, as the binary decoder counts it.
                if depth + 2 > MAX_DEPTH:
                    raise too_deep()
                decode_value(codec, container[map_key], item, depth + 2)
            else:
                try:
                    container[map_key] = decode_value(item)
                except UnknownEnumName:
                    if not codec.ignore_unknown_fields:
                        raise
        except ConversionError as e:
            e.prepend(key)
            raise
