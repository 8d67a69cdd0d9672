"""Binary protobuf and text format, with the same error type as JSON."""

from __future__ import annotations

import functools
import re
from typing import TypeVar, overload

from google.protobuf import any_pb2, descriptor_pool, text_format, unknown_fields
from google.protobuf.message import DecodeError, EncodeError, Message

from ._codec import MAX_DEPTH, too_deep
from ._codec.descriptors import is_repeated
from ._errors import ConversionError, excerpt
from ._operation import Operation
from ._registry import TypeRegistry, UnknownTypeError, default_registry

__all__ = ["from_binary", "from_text", "to_binary", "to_text"]

M = TypeVar("M", bound=Message)

# What the text parser may raise on bad input besides ParseError: ValueError for numbers out
# of an enum's or a field's range, TypeError and friends for values of the wrong kind.
_PARSE_FAILURES = (
    text_format.ParseError,
    ValueError,
    TypeError,
    OverflowError,
    DecodeError,
    EncodeError,
    RecursionError,
)
# Strings and comments of text format, whose braces do not nest messages.
_NOT_NESTING = re.compile(r""" "(?:[^"\\\n]|\\.)*" | '(?:[^'\\\n]|\\.)*' | \#[^\n]* """, re.X)
_BRACES = re.compile(r"[{}<>]")
_MAX_REASON_CHARS = 300


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
    as JSON input is. Messages may nest at most MAX_DEPTH levels, as in JSON."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as e:
            raise ConversionError(f"input is not UTF-8: invalid byte at offset {e.start}") from e
    # The message itself is a level, as in JSON; each brace opens one more.
    if 1 + _nesting(text) > MAX_DEPTH:
        raise too_deep()
    registry = registry or default_registry
    message = message_type()
    try:
        # The registry's pool is a stand-in with the one method text_format calls.
        pool = registry.descriptor_pool()
        text_format.Parse(text, message, descriptor_pool=pool)  # type: ignore[arg-type]
    except _PARSE_FAILURES as e:
        reason = str(e) if not isinstance(e, RecursionError) else "nested too deeply"
        if len(reason) > _MAX_REASON_CHARS:
            reason = reason[:_MAX_REASON_CHARS] + f"... ({len(reason)} characters)"
        raise ConversionError(f"not valid text format: {reason}") from e
    _walk(message, registry, [], repack=True, depth=1)
    return message


def to_text(message: Message, *, registry: TypeRegistry | None = None) -> str:
    """Protobuf text format, Any values expanded where their type is known and their type
    URL reads back as it is (``https://...`` or one with spaces stays ``type_url`` and
    ``value``, which reads back exactly).

    A message holding fields its schema does not know (anywhere, packed Anys included) is
    refused: text format would drop them. So is one nested deeper than MAX_DEPTH, as in JSON.
    """
    registry = registry or default_registry
    _walk(message, registry, [], repack=False, depth=1)
    pool = registry.descriptor_pool()
    try:
        text: str = text_format.MessageToString(
            message,
            descriptor_pool=pool,  # type: ignore[arg-type]
            as_utf8=True,
            message_formatter=_any_as_fields,
        )
    except (ValueError, TypeError, DecodeError, EncodeError, RecursionError) as e:
        raise ConversionError(f"cannot write text format: {excerpt(str(e), 200)}") from e
    return text


def _nesting(text: str) -> int:
    """How deeply the messages of a text nest (each ``{`` or ``<`` opens one), outside
    strings and comments: checked before parsing, which recurses per level."""
    deepest = depth = 0
    for match in _BRACES.finditer(_NOT_NESTING.sub("", text)):
        if match.group() in "{<":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _any_as_fields(message: Message, indent: int, as_one_line: bool) -> str | None:
    """An Any whose type URL the text parser would read back differently, written as its
    ``type_url`` and ``value`` fields; None (the printer's own way) for everything else."""
    if not isinstance(message, any_pb2.Any) or _reads_back(message.type_url):
        return None
    text: str = text_format.MessageToString(
        message, descriptor_pool=_NO_TYPES, as_utf8=True, indent=indent, as_one_line=as_one_line
    )
    return text.strip()


_NO_TYPES = descriptor_pool.DescriptorPool()  # nothing resolves: Anys print as fields


@functools.lru_cache(maxsize=1024)
def _reads_back(type_url: str) -> bool:
    """Whether ``[type_url] {}`` parses back to this very type URL (tried with a type every
    pool has, so only the URL's prefix and the name's form matter)."""
    prefix, slash, name = type_url.rpartition("/")
    if not slash or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*", name):
        return False
    probe = any_pb2.Any()
    try:
        text_format.Parse(f"[{prefix}/google.protobuf.Empty] {{}}", probe)
    except _PARSE_FAILURES:
        return False
    read: str = probe.type_url
    return read == f"{prefix}/google.protobuf.Empty"


def _walk(
    message: Message,
    registry: TypeRegistry,
    path: list[str | int],
    repack: bool,
    depth: int,
) -> None:
    """Check that no message (packed ones included) holds unknown fields or nests deeper than
    MAX_DEPTH; with ``repack``, re-serialize every packed message deterministically."""
    if depth > MAX_DEPTH:
        raise ConversionError(too_deep().reason, path)
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
        except (DecodeError, RecursionError) as e:
            raise ConversionError(
                f"Any value is not a valid {cls.DESCRIPTOR.full_name} in binary form: {e}", path
            ) from e
        _walk(inner, registry, path, repack, depth + 1)
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
                # The map entry is a message level of its own, as in JSON.
                _walk(item, registry, [*path, name, str(key)], repack, depth + 2)
        elif is_repeated(field):
            for index, item in enumerate(value):
                _walk(item, registry, [*path, name, index], repack, depth + 1)
        else:
            _walk(value, registry, [*path, name], repack, depth + 1)
