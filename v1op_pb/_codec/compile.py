"""Python source for the JSON codec of one message type, compiled once per descriptor.

A decoder is a loop over the keys of the JSON object that maps each key to its field's index
and runs straight-line code for that field; an encoder reads the fields in number order and
writes each one that is present. Field kinds compile to a handful of shapes: a scalar with an
inline fast check, an enum, a message (a call to that type's compiled function), and calls
to the helpers below for repeated fields and maps. Keys and errors are checked exactly as the
generic reading of the proto3 JSON mapping does: the same inputs are refused with the same
messages and the same JSON paths; only the work on the success path is less.

The source is generated per type rather than assembled from closures because a call per field
is most of the cost of a closure-based codec; here a scalar field costs a dict lookup, a
comparison or two and an attribute store.
"""

from __future__ import annotations

import itertools
import keyword
import math
from collections.abc import Callable
from typing import Any, Protocol

from google.api import field_behavior_pb2
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor, OneofDescriptor
from google.protobuf.message import Message

from .._errors import ConversionError, excerpt
from .._registry import TypeRegistry
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

__all__ = [
    "CodecLike",
    "MessageDecoder",
    "MessageEncoder",
    "compile_decoder",
    "is_output_only",
]


class CodecLike(Protocol):
    """What compiled functions and well-known-type units need of the Codec that calls them
    (a protocol, so that they do not import the module that imports them)."""

    registry: TypeRegistry
    ignore_unknown_fields: bool
    check_unknown: bool

    def decode_message(self, message: Message, value: Any, depth: int) -> None: ...

    def decode_fields(
        self, message: Message, value: Any, depth: int, skip: str | None = None
    ) -> None: ...

    def encode_message(self, message: Message, depth: int) -> Any: ...

    def unknown_fields_in(self, message: Message) -> None: ...

    def check_payload(self, message: Message, size: int) -> None: ...


MessageDecoder = Callable[["CodecLike", Message, Any, int], None]
MessageEncoder = Callable[["CodecLike", Message, int], Any]

_T = FieldDescriptor
_OUTPUT_ONLY = field_behavior_pb2.OUTPUT_ONLY
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


class Links(Protocol):
    """The compiled functions of other message types, looked up when first called."""

    def decoder(self, descriptor: Descriptor) -> MessageDecoder: ...

    def encoder(
        self, descriptor: Descriptor, emit_unpopulated: bool, omit_output_only: bool, checked: bool
    ) -> MessageEncoder: ...


def is_output_only(field: FieldDescriptor) -> bool:
    """Whether the field is annotated ``(google.api.field_behavior) = OUTPUT_ONLY``."""
    options = field.GetOptions()
    # Re-read through the default pool's FieldOptions so that the annotation is found also
    # on descriptors from another pool (a loaded descriptor set).
    parsed = descriptor_pb2.FieldOptions.FromString(options.SerializeToString())
    # googleapis-common-protos' stubs type the extension as a plain FieldDescriptor.
    return _OUTPUT_ONLY in parsed.Extensions[field_behavior_pb2.field_behavior]  # type: ignore[index]


def message_of(field: FieldDescriptor) -> Descriptor:
    """The message type of a message or map field (the stubs type it optional)."""
    message_type = field.message_type
    assert message_type is not None, field.full_name
    return message_type


def enum_of(field: FieldDescriptor) -> EnumDescriptor:
    enum_type = field.enum_type
    assert enum_type is not None, field.full_name
    return enum_type


def is_map(field: FieldDescriptor) -> bool:
    return (
        is_repeated(field)
        and field.message_type is not None
        and field.message_type.GetOptions().map_entry
    )


def is_message(field: FieldDescriptor) -> bool:
    return field.type in (_T.TYPE_MESSAGE, _T.TYPE_GROUP)


def json_key(field: FieldDescriptor) -> str:
    # Extensions are written "[full.name]", as in json_format.
    return f"[{field.full_name}]" if field.is_extension else field.json_name


def has_presence(field: FieldDescriptor) -> bool:
    return field.has_presence and not is_repeated(field)


def real_oneof(field: FieldDescriptor) -> OneofDescriptor | None:
    """The oneof of a field, if it has other members.

    A one-member oneof (the synthetic one of a proto3 ``optional`` among them; upb does not
    say which are synthetic) can clash with nothing, and its member is a field with
    presence, so it compiles as one."""
    oneof = field.containing_oneof
    if oneof is None or len(oneof.fields) == 1:
        return None
    return oneof


def _negative_zero(value: float) -> bool:
    return value == 0.0 and math.copysign(1.0, value) < 0


# --- source assembly ---------------------------------------------------------------------


class Source:
    """Lines of one generated function and the names its code refers to."""

    def __init__(self, links: Links) -> None:
        self.links = links
        self.lines: list[str] = []
        self.names: dict[str, Any] = {
            "ConversionError": ConversionError,
            "UnknownEnumName": UnknownEnumName,
            "MAX_DEPTH": MAX_DEPTH,
            "too_deep": too_deep,
            "expect_object": expect_object,
            "negative_zero": _negative_zero,
        }
        self._counter = itertools.count()

    def name(self, value: Any, hint: str) -> str:
        """A global name in the generated code bound to ``value``."""
        name = f"{hint}_{next(self._counter)}"
        self.names[name] = value
        return name

    def lazy(self, resolve: Callable[[], Callable[..., Any]], hint: str) -> str:
        """A global name bound to the function ``resolve`` returns, resolved on first call."""
        name = f"{hint}_{next(self._counter)}"
        names = self.names

        def first_call(*args: Any) -> Any:
            function = names[name] = resolve()
            return function(*args)

        names[name] = first_call
        return name

    def add(self, indent: int, text: str) -> None:
        self.lines.append("    " * indent + text)

    def build(self, function: str, filename: str) -> Any:
        code = compile("\n".join(self.lines) + "\n", filename, "exec")
        # Names from descriptors enter the source only as repr() literals or as identifiers
        # checked with isidentifier(); values are bound in self.names, never spelled out.
        exec(code, self.names)
        return self.names[function]


class Access:
    """How generated code reads and writes a field: an attribute, or Extensions[...]."""

    def __init__(self, source: Source, field: FieldDescriptor) -> None:
        if field.is_extension:
            handle = source.name(field, "EXT")
            self.get = f"m.Extensions[{handle}]"
            self._set = f"m.Extensions[{handle}] = {{}}"
        elif keyword.iskeyword(field.name) or not field.name.isidentifier():
            quoted = repr(field.name)
            self.get = f"getattr(m, {quoted})"
            self._set = f"setattr(m, {quoted}, {{}})"
        else:
            self.get = f"m.{field.name}"
            self._set = f"m.{field.name} = {{}}"

    def set(self, expression: str) -> str:
        return self._set.format(expression)


# --- decoding ----------------------------------------------------------------------------


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
