"""Python source for the JSON codec of one message type, compiled once per descriptor: what
the decoder (``decode``) and the encoder (``encode``) share.

A decoder is a loop over the keys of the JSON object that maps each key to its field's index
and runs straight-line code for that field; an encoder reads the fields in number order and
writes each one that is present. Field kinds compile to a handful of shapes: a scalar with an
inline fast check, an enum, a message (a call to that type's compiled function), and calls
to helpers for repeated fields and maps. Keys and errors are checked exactly as the
generic reading of the proto3 JSON mapping does: the same inputs are refused with the same
messages and the same JSON paths; only the work on the success path is less.

The source is generated per type rather than assembled from closures because a call per field
is most of the cost of a closure-based codec; here a scalar field costs a dict lookup, a
comparison or two and an attribute store.

Shared here: the protocols compiled code is written against (``CodecLike``, ``Links``), the
descriptor questions both sides ask, and the assembly of a function's source (``Source``,
``Access``) with the names every generated function may refer to.
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

from .._errors import ConversionError
from .._registry import TypeRegistry
from .descriptors import is_repeated
from .jsontext import MAX_DEPTH, too_deep
from .scalars import UnknownEnumName, expect_object

__all__ = [
    "Access",
    "CodecLike",
    "Links",
    "MessageDecoder",
    "MessageEncoder",
    "Source",
    "enum_of",
    "has_presence",
    "is_map",
    "is_message",
    "is_output_only",
    "json_key",
    "message_of",
    "real_oneof",
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
