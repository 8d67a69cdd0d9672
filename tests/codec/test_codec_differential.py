"""The JSON codec against google.protobuf.json_format on a rich schema, by random messages.

tests/data/richtest/v1/rich.proto has every scalar kind (singular, optional, repeated), an
open enum with an alias, a oneof of a scalar, a message and well-known types, recursion, maps
with every key kind and every value kind, and every well-known type singular and repeated.
It is compiled at import time into a private descriptor pool; the codec resolves Any types
through a TypeRegistry holding exactly that pool's types, json_format through the pool.

json_format is the oracle. On output the two must agree exactly (values and key order); on
input, everything json_format refuses the codec must refuse with a ConversionError, and what
both accept must read as the same message. The codec is deliberately stricter than
json_format in documented places: those are the only disagreements allowed (STRICTER), each
recognised by the codec's reason and by the offending input value.
"""

from __future__ import annotations

import copy
import json
import math
import re
import struct
import tempfile
from collections.abc import Callable, Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import grpc_tools
import pytest
from canonical import assert_same as assert_same_value
from canonical import canonical as canonical_bytes
from canonical import sorted_maps
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.message import DecodeError, Message
from grpc_tools import protoc
from hypothesis import HealthCheck, currently_in_test_context, event, given, note, settings
from hypothesis import strategies as st
from strategies import FLOAT32_MAX, pool_messages

from v1op_pb import ConversionError, TypeRegistry, from_dict, from_json, to_dict, to_json
from v1op_pb._codec.descriptors import is_repeated

PROTO_ROOT = Path(__file__).resolve().parents[1] / "data"
WKT_INCLUDE = Path(grpc_tools.__file__).parent / "_proto"
ANY = "google.protobuf.Any"

# --- the schema, compiled at import time ---------------------------------------------------


def _compile() -> descriptor_pb2.FileDescriptorSet:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rich.pb"
        args = ["protoc", f"-I{PROTO_ROOT}", f"-I{WKT_INCLUDE}", "--include_imports"]
        assert protoc.main([*args, f"--descriptor_set_out={out}", "richtest/v1/rich.proto"]) == 0
        return descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())


FILE_SET = _compile()
# A private pool with its own copies of the well-known types (protoc's, from the set): the
# codec recognises well-known types by full name, whatever pool their classes come from.
POOL = descriptor_pool.DescriptorPool()
for _file in FILE_SET.file:
    POOL.Add(_file)
CLASSES = message_factory.GetMessages(list(FILE_SET.file), pool=POOL)


def _class(full_name: str) -> type[Message]:
    return message_factory.GetMessageClass(POOL.FindMessageTypeByName(full_name))


Rich = _class("richtest.v1.Rich")
Payload = _class("richtest.v1.Payload")
PoolAny = _class(ANY)

# Exactly the pool's types, so that the codec resolves what json_format resolves and no
# more (the default pool would also know, say, google.rpc.ErrorInfo): the descriptor set
# loaded into a registry of its own (the well-known types resolve to the default pool's
# generated classes, everything else to the registry's own pool, map entries included).
REGISTRY = TypeRegistry(use_default_pool=False)
REGISTRY.add_descriptor_set(FILE_SET)
# The same types registered as this pool's classes (map entries left out, as register()
# does).
CLASS_REGISTRY = TypeRegistry(use_default_pool=False).register(
    *(cls.DESCRIPTOR for cls in CLASSES.values())
)

# What an Any packs: both message types of the file, their nested types, every well-known
# type (Any itself too, so Anys nest).
PAYLOADS = (
    Rich,
    Payload,
    _class("richtest.v1.Rich.Nested"),
    _class("richtest.v1.Payload.Inner"),
    *(cls for name, cls in sorted(CLASSES.items()) if name.startswith("google.protobuf.")),
)

rich_messages = pool_messages(Rich, 2, PAYLOADS, 3)
# Anys at the top, packing Anys (three deep), Rich, Payload and well-known types.
any_messages = pool_messages(PoolAny, 3, PAYLOADS, 3)
test_messages = st.one_of(rich_messages, rich_messages, any_messages)

PROPERTY = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- comparing messages ------------------------------------------------------------------


def canonical(message: Message) -> bytes:
    return canonical_bytes(message, REGISTRY.resolve)


def assert_same(actual: Message, expected: Message) -> None:
    assert_same_value(actual, expected, REGISTRY.resolve)


def ordered(value: Any) -> str:
    """JSON text that differs when values, kinds (1 vs 1.0, 0.0 vs -0.0) or key order do."""
    return json.dumps(value, ensure_ascii=False)


def theirs_dict(message: Message, **options: Any) -> Any:
    return json_format.MessageToDict(message, descriptor_pool=POOL, **options)


def theirs_parse(text: str, cls: type[Message]) -> Message:
    return json_format.Parse(text, cls(), descriptor_pool=POOL)


def ours_parse(text: str | bytes, cls: type[Message]) -> Message:
    return from_json(text, message_type=cls, registry=REGISTRY)


# --- valid messages: both write the same JSON and read each other's ----------------------


@PROPERTY
@given(test_messages)
def test_output_is_json_formats(message: Message) -> None:
    # json_format writes a map's entries in the map's own order, ours sorted by key.
    expected = ordered(sorted_maps(theirs_dict(message), message.DESCRIPTOR, REGISTRY.resolve))
    assert ordered(json.loads(to_json(message, registry=REGISTRY))) == expected
    assert ordered(to_dict(message, registry=REGISTRY)) == expected
    assert ordered(to_dict(message, registry=CLASS_REGISTRY)) == expected


@PROPERTY
@given(test_messages)
def test_we_read_json_formats_output(message: Message) -> None:
    text = json_format.MessageToJson(message, descriptor_pool=POOL)
    assert_same(ours_parse(text, type(message)), message)
    assert_same(ours_parse(text.encode(), type(message)), message)


@PROPERTY
@given(test_messages)
def test_json_format_reads_our_output(message: Message) -> None:
    assert_same(theirs_parse(to_json(message, registry=REGISTRY), type(message)), message)


@PROPERTY
@given(test_messages)
def test_own_output_reads_back(message: Message) -> None:
    cls = type(message)
    text = to_json(message, registry=REGISTRY)
    assert_same(ours_parse(text, cls), message)
    assert_same(ours_parse(text.encode("utf-8"), cls), message)
    value = to_dict(message, registry=REGISTRY)
    assert_same(from_dict(value, message_type=cls, registry=REGISTRY), message)
    # Written again, the text is the same (map keys are written sorted).
    again = to_json(ours_parse(text, cls), registry=REGISTRY)
    assert again == text


def _null_for_unset_values(message: Message) -> None:
    """Set every unset singular Value field (outside a oneof) to null, in place, at every
    level, in Any payloads too."""
    if message.DESCRIPTOR.full_name == ANY:
        if message.type_url:
            inner = REGISTRY.resolve(message.type_url).FromString(message.value)
            _null_for_unset_values(inner)
            message.value = inner.SerializePartialToString(deterministic=True)
        return
    for field in message.DESCRIPTOR.fields:
        if (
            field.message_type is not None
            and field.message_type.full_name == "google.protobuf.Value"
            and not is_repeated(field)
            and field.containing_oneof is None
            and not message.HasField(field.name)
        ):
            getattr(message, field.name).null_value = 0
    for field, value in message.ListFields():
        if field.message_type is None or (
            field.message_type.full_name.startswith("google.protobuf.")
            and field.message_type.full_name != ANY
        ):
            continue
        if field.message_type.GetOptions().map_entry:
            if field.message_type.fields_by_name["value"].message_type is not None:
                for item in value.values():
                    _null_for_unset_values(item)
        elif is_repeated(field):
            for item in value:
                _null_for_unset_values(item)
        else:
            _null_for_unset_values(value)


def unpopulated_reading(message: Message) -> Message:
    """What the emit_unpopulated output of a message reads back as: an unset Value field is
    written as null, and null in a Value field is a Value holding null_value."""
    copied = type(message)()
    copied.CopyFrom(message)
    _null_for_unset_values(copied)
    return copied


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


@PROPERTY
@given(test_messages)
def test_unpopulated_output_reads_back_in_both(message: Message) -> None:
    cls = type(message)
    text = to_json(message, registry=REGISTRY, emit_unpopulated=True)
    expected = unpopulated_reading(message)
    assert_same(ours_parse(text, cls), expected)
    assert_same(theirs_parse(text, cls), expected)
    # json_format leaves unset messages out where the codec writes null, and writes the
    # fields in another order; the values of everything else are the same.
    theirs = theirs_dict(message, always_print_fields_with_no_presence=True)
    assert _without_nulls(json.loads(text)) == _without_nulls(theirs)


def _varint(number: int) -> bytes:
    out = bytearray()
    while True:
        byte, number = number & 0x7F, number >> 7
        out.append(byte | (0x80 if number else 0))
        if not number:
            return bytes(out)


@settings(PROPERTY, max_examples=30)
@given(test_messages, st.integers(1000, 18999), st.integers(0, 2**64 - 1))
def test_unknown_fields_are_refused_where_json_format_drops_them(
    message: Message, number: int, value: int
) -> None:
    # Deliberately stricter: a message read from binary written with a newer schema carries
    # fields JSON cannot; json_format leaves them out unnoticed.
    data = message.SerializeToString() + _varint(number << 3) + _varint(value)
    parsed = type(message).FromString(data)
    assert theirs_dict(parsed) == theirs_dict(message)
    with pytest.raises(ConversionError, match="carries fields its schema does not know"):
        to_json(parsed, registry=REGISTRY)


def test_null_elements_have_no_json_form_in_either() -> None:
    # A NullValue in a repeated field or a map prints as null (in both), and null is no
    # repeated element or map value on input (in both): the strategies never set them.
    message = Rich(repeated_null_value=[0], map_string_null_value={"a": 0})
    text = to_json(message, registry=REGISTRY)
    assert json.loads(text) == theirs_dict(message)
    assert json.loads(text) == {"repeatedNullValue": [None], "mapStringNullValue": {"a": None}}
    for member in ('{"repeatedNullValue":[null]}', '{"mapStringNullValue":{"a":null}}'):
        with pytest.raises(json_format.ParseError):
            theirs_parse(member, Rich)
        with pytest.raises(ConversionError):
            ours_parse(member, Rich)


# --- mutated input ------------------------------------------------------------------------


class Pairs(list):
    """A JSON object as a list of (key, value) members: duplicate keys allowed."""


class Nest:
    """A value inside ``levels`` levels of {"a": ...} and [...], alternately; written without
    recursion, as deep as needed."""

    def __init__(self, value: Any, levels: int) -> None:
        self.value = value
        self.levels = levels


def dumps(value: Any, ascii: bool = True) -> str:
    """JSON text, with Pairs objects and the non-JSON constants NaN and Infinity; non-ASCII
    characters escaped unless ``ascii`` is false."""
    if isinstance(value, (dict, Pairs)):
        members = value.items() if isinstance(value, dict) else value
        text = ",".join(
            f"{json.dumps(k, ensure_ascii=ascii)}:{dumps(v, ascii)}" for k, v in members
        )
        return "{" + text + "}"
    if isinstance(value, list):
        return "[" + ",".join(dumps(v, ascii) for v in value) + "]"
    if isinstance(value, Nest):
        opening = "".join('{"a":' if level % 2 == 0 else "[" for level in range(value.levels))
        closing = "".join("}" if level % 2 == 0 else "]" for level in range(value.levels))
        return opening + dumps(value.value, ascii) + closing[::-1]
    return json.dumps(value, ensure_ascii=ascii)  # NaN and Infinity as the bare words


def loads(text: str) -> Any:
    """The JSON value of text as dumps writes it (Pairs where a key repeats); None if it is
    not JSON."""

    def pairs(members: list[tuple[str, Any]]) -> Any:
        return dict(members) if len(dict(members)) == len(members) else Pairs(members)

    try:
        return json.loads(text, object_pairs_hook=pairs)
    except (ValueError, RecursionError):
        return None


def _locations(value: Any, path: tuple = ()) -> Iterator[tuple]:
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _locations(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _locations(item, (*path, index))


def _get(tree: Any, path: tuple | list) -> Any:
    for segment in path:
        if isinstance(tree, Pairs):
            tree = [v for k, v in tree if k == segment][-1]
        else:
            tree = tree[segment]
    return tree


def _replace(tree: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    _get(tree, path[:-1])[path[-1]] = new
    return tree


_INTEGERS = [
    *(s * 2**b + d for s in (1, -1) for b in (31, 32, 53, 63, 64) for d in (-1, 0, 1)),
    0,
    -1,
    10**30,
    2**1100,
]
_FLOATS = [
    1.5,
    -0.5,
    0.0,
    -0.0,
    1.0,
    1e10,
    2.0**63,
    1e300,
    5e-324,
    FLOAT32_MAX,
    3.4028235e38,
    3.5e38,
    1e39,
    -1e39,
    math.nan,
    math.inf,
    -math.inf,
]
_NUMBER_STRINGS = [
    *(str(n) for n in _INTEGERS),
    *["1.5", "1e2", "1E2", "-0", "01", "1.0", "0.0e5", "100e-2", "1e-2", "1e400", "-1e400"],
    *["0e50", "0.0e-60", "1.5e1", "1e18", "9223372036854775807e0", "9.223372036854775807e18"],
    *["1.0000000000000000001e2", "1e39", "3.5e38", "3.4028235e38", "1e309", "-1e309", "1e-400"],
    *["1_000", "+1", " 1", "1 ", "0x10", "\uff11", "\u0663", "1.", ".5", "1e", "--1", ""],
    *["NaN", "Infinity", "-Infinity", "nan", "inf", "-inf", "infinity", "+Infinity", "-nan"],
]
_TIMESTAMPS = [
    "1970-01-01T00:00:00Z",
    "1970-01-01T00:00:00.Z",
    "1970-01-01T00:00:00.1234567890Z",
    "1970-01-01T00:00:00.000000001Z",
    "1970-01-01T00:00:00",
    "1970-01-01 00:00:00Z",
    "1970-01-01T00:00:00z",
    "1970-01-01t00:00:00Z",
    "1970-1-01T00:00:00Z",
    "1970-01-01T0:0:0Z",
    "1970-01-01T00:00:00+2:00",
    "1970-01-01T00:00:00+24:00",
    "1970-01-01T00:00:00+00:60",
    "1970-01-01T00:00:00+0100",
    "1970-01-01T00:00:00-00:00",
    "1970-01-01T02:00:00+02:00",
    "1970-02-30T00:00:00Z",
    "1970-13-01T00:00:00Z",
    "1970-01-01T24:00:00Z",
    "1970-01-01T23:59:60Z",
    "2016-12-31T23:59:60Z",
    "0000-12-31T23:59:59Z",
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+00:01",
    "9999-12-31T23:59:59.999999999Z",
    "9999-12-31T23:59:59-00:01",
    "10000-01-01T00:00:00Z",
    "1970-01-01T00:00:00ZZ",
    "1970-01-01T00:00:00Z ",
]
_DURATIONS = [
    "1s",
    "-1s",
    "0s",
    "-0s",
    "1.5s",
    "-0.5s",
    "1.s",
    ".5s",
    "1.0000000001s",
    "1.0000000005s",
    "0.9999999999s",
    "+1s",
    " 1s",
    "1 s",
    "1.5 s",
    "1S",
    "1",
    "1e2s",
    "1_0s",
    "- 1s",
    "01s",
    "315576000000.999999999s",
    "315576000001s",
    "-315576000001s",
    "1.-5s",
]
_BASE64 = ["AP8=", "AP8", "AP8==", "AP8===", "A P8=", "AP8=\n", "=AP8", "A=P8", "-_8", "+/8="]
_BASE64 += ["_-8=", "Q", "QUJDR", "ÄÄ==", "QUJD!", "QUJD\t", "", "===="]
_ENUM_NAMES = ["SHADE_RED", "SHADE_VERDE", "SHADE_GREEN", "SHADE_NEGATIVE", "SHADE_UNSPECIFIED"]
_ENUM_NAMES += ["shade_red", "NOPE", "NULL_VALUE", "null", "1", " 1", "1.0", "-1", "SHADE_RED "]
_ENUM_NAMES += ["1_0", "+2", "0x1", "2147483648"]
_FIELD_MASKS = ["fooBar", "foo_bar", "a.b", "a,b", "", "A", "a..b", ",", "a b", "aB.cD", "a1b"]
_FIELD_MASKS += ["_a", "a_", "fooBAR", "foo.barBaz,qux"]
_NESTING = [1, 2, 30, 47, 48, 49, 50, 51, 97, 98, 99, 100, 101, 253, 254, 255, 600, 1100]
_TYPE_NAMES = [
    "richtest.v1.Rich",
    "richtest.v1.Payload",
    "richtest.v1.Rich.Nested",
    "richtest.v1.Payload.Inner",
    "richtest.v1.Shade",
    *(name for name in sorted(CLASSES) if name.startswith("google.protobuf.")),
    "google.protobuf.Struct.FieldsEntry",
    "google.rpc.ErrorInfo",  # in the default pool, not in this one
    "nope.Nope",
    "",
]
_TYPE_URLS = [
    *(f"type.googleapis.com/{name}" for name in _TYPE_NAMES),
    "example.com/a/b/richtest.v1.Payload",
    "/richtest.v1.Payload",
    "richtest.v1.Payload",
    "google.protobuf.Empty",
    "type.googleapis.com/richtest.v1.Payload/",
    "nope",
]
_STRINGS = [*_TIMESTAMPS, *_DURATIONS, *_BASE64, *_ENUM_NAMES, *_FIELD_MASKS, *_TYPE_URLS]
_STRINGS += ["\ud800", "a\udc00", "true", "false", "null", "{}", "[]", "é", "\x00"]
_KEYS = [
    "nope",
    "singleInt33",
    "@type",
    "value",
    "[richtest.v1.nope]",
    "",
    "SingleInt32",
    "single_Int32",
    "singleint32",
    "customName",
    "renamed_field",
    "renamedField",
    "choiceText",
    "choice_number",
    "choiceValue",
    "choiceNull",
    "label",
    "seconds",
    "paths",
    "fields",
    "values",
    "nullValue",
]
_MAP_KEYS = ["0", "1", "-1", "01", "-0", "+1", " 1", "1.0", "1e2", "\uff11", "1_0", "true", "True"]
_MAP_KEYS += ["false", "", "4294967296", "18446744073709551616", "-9223372036854775809", "x"]

_SCALAR_VALUES = st.one_of(
    st.sampled_from([None, True, False]),
    st.sampled_from(_INTEGERS),
    st.sampled_from(_FLOATS),
    st.sampled_from(_NUMBER_STRINGS),
    st.sampled_from(_STRINGS),
    st.integers(),
    st.floats(),
    st.text(max_size=6),
)
# Any JSON value, and non-JSON values (NaN, Infinity) too.
_VALUES = st.recursive(
    _SCALAR_VALUES,
    lambda children: (
        st.lists(children, max_size=2)
        | st.dictionaries(st.sampled_from(_KEYS) | st.text(max_size=4), children, max_size=2)
    ),
    max_leaves=4,
)
_EDIT_CHARS = [*" _.+-eEZzTts:=/0159\n\x00\u00e9\uff11\u0663", "\ud800"]


@st.composite
def _edited(draw: st.DrawFn, text: str) -> str:
    """The text with one character inserted, deleted, replaced or duplicated."""
    at = draw(st.integers(0, len(text)))
    char = draw(st.sampled_from(_EDIT_CHARS))
    how = draw(st.sampled_from(["insert", "delete", "replace", "double", "case"]))
    if how == "insert" or not text:
        return text[:at] + char + text[at:]
    at = min(at, len(text) - 1)
    if how == "delete":
        return text[:at] + text[at + 1 :]
    if how == "replace":
        return text[:at] + char + text[at + 1 :]
    if how == "double":
        return text[:at] + text[at] + text[at:]
    return text[:at] + text[at].swapcase() + text[at + 1 :]


_LOOKS_LIKE = [
    (re.compile(r"^-?[0-9]+$"), _NUMBER_STRINGS + _MAP_KEYS),
    (re.compile(r"^[0-9]{4}-"), _TIMESTAMPS),
    (re.compile(r"s$"), _DURATIONS),
    (re.compile(r"^[A-Za-z0-9+/]+=*$"), _BASE64),
    (re.compile(r"^[A-Z][A-Z_]+$"), _ENUM_NAMES),
    (re.compile(r"/"), _TYPE_URLS),
    (re.compile(r"^[a-z][A-Za-z0-9.,]*$"), _FIELD_MASKS),
]


def _mutated_value(original: Any) -> st.SearchStrategy:
    """A replacement for a JSON value: near misses of its own kind, or anything."""
    options = [_VALUES]
    if isinstance(original, str):
        options.append(_edited(original))
        options += [
            st.sampled_from(pool) for pattern, pool in _LOOKS_LIKE if pattern.search(original)
        ]
    elif isinstance(original, bool):
        options.append(st.sampled_from([0, 1, "true", "false", None]))
    elif isinstance(original, (int, float)):
        derived = [original + 0.5, -original, str(original), float(original), original * 2**32]
        derived += [f"{original}e0", f"{original}.0", f" {original}", math.inf]
        options.append(st.sampled_from(derived))
        options.append(st.sampled_from(_INTEGERS + _FLOATS))
        options.append(st.sampled_from(_NUMBER_STRINGS))
    elif isinstance(original, list) and original:
        options.append(
            st.builds(
                lambda i, v: [*original[:i], v, *original[i:]],
                st.integers(0, len(original)),
                _VALUES,
            )
        )
        options.append(st.just(original[::-1]))
    elif isinstance(original, dict):
        options.append(st.sampled_from([[], "", None, [[]], [original]]))
    return st.one_of(options)


def _camel(name: str) -> str:
    return re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), name)


def _snake(name: str) -> str:
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name)


def _spellings() -> dict[str, str]:
    """Each field's proto name to its JSON name and back, for every message in the pool."""
    other: dict[str, str] = {}

    def visit(descriptor: Any) -> None:
        for field in descriptor.fields:
            if field.name != field.json_name:
                other.setdefault(field.name, field.json_name)
                other.setdefault(field.json_name, field.name)
        for nested in descriptor.nested_types:
            visit(nested)

    for cls in CLASSES.values():
        visit(cls.DESCRIPTOR)
    return other


SPELLINGS = _spellings()


def _respelled(key: str) -> str:
    if key in SPELLINGS:
        return SPELLINGS[key]
    return _snake(key) if key != _snake(key) else _camel(key)


@st.composite
def mutated_json(draw: st.DrawFn, message: Message) -> tuple[Any, str, tuple | None]:
    """The JSON value of a valid message with one change at one place, what was done, and
    the path of the value if one was replaced."""
    tree = json.loads(json_format.MessageToJson(message, descriptor_pool=POOL))
    paths = list(_locations(tree))
    path = draw(st.sampled_from(paths))
    original = copy.deepcopy(_get(tree, path))
    kinds = ["replace", "replace", "replace", "nest"]
    if isinstance(original, dict):
        kinds += ["add key"]
        if original:
            kinds += ["repeat key", "respell key", "rename key", "drop key"]
        if "@type" in original:
            kinds += ["retype"]
    kind = draw(st.sampled_from(kinds))
    if kind == "replace":
        new: Any = draw(_mutated_value(original))
    elif kind == "nest":
        # Around the nesting limit (100 messages), and orjson's (254 levels, 1024 levels).
        new = Nest(original, draw(st.sampled_from(_NESTING)))
    elif kind == "retype":
        new = dict(original)
        new["@type"] = draw(st.sampled_from(_TYPE_URLS) | _mutated_value(original["@type"]))
    else:
        members = list(original.items())
        at = draw(st.integers(0, len(members)))
        if kind == "add key":
            key = draw(st.sampled_from(_KEYS) | st.text(max_size=6))
            members.insert(at, (key, draw(_VALUES)))
        elif kind in ("repeat key", "respell key", "rename key", "drop key"):
            index = draw(st.integers(0, len(members) - 1))
            key, value = members[index]
            if kind == "drop key":
                del members[index]
            elif kind == "rename key":
                new_key = draw(st.sampled_from(_MAP_KEYS) | _edited(key))
                members[index] = (new_key, value)
            else:
                other = key if kind == "repeat key" else _respelled(key)
                # The same value again, or another one.
                again = draw(st.just(value) | _mutated_value(value))
                members.insert(at, (other, again))
        new = Pairs(members)
        if len({k for k, _ in members}) == len(members):
            new = dict(members)
    tree = _replace(tree, path, new)
    return tree, f"{kind} at {list(path)}", path if kind == "replace" else None


_TEXT_EDIT_CHARS = [*'{}[],:"\\u0 1.-eE', "\\u003a", "\\ud800", "\\u0000", "\u00e9", "\ufeff"]


@st.composite
def _edited_text(draw: st.DrawFn, text: str) -> str:
    """JSON text with one character (or escape) inserted, deleted or replaced: mostly not
    JSON any more, or JSON of another shape."""
    at = draw(st.integers(0, len(text)))
    how = draw(st.sampled_from(["insert", "delete", "replace"]))
    char = draw(st.sampled_from(_TEXT_EDIT_CHARS))
    if how == "insert" or not text:
        return text[:at] + char + text[at:]
    at = min(at, len(text) - 1)
    return text[:at] + ("" if how == "delete" else char) + text[at + 1 :]


# --- where the codec may refuse what json_format reads -----------------------------------

_JSON_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?\Z", re.ASCII)
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?"
    r"(?:Z|[+-]([0-9]{2}):([0-9]{2}))\Z",
    re.ASCII,
)
_DURATION = re.compile(r"-?[0-9]+(?:\.[0-9]{1,9})?s\Z", re.ASCII)
_BASE64_TEXT = re.compile(r"[A-Za-z0-9+/_-]*={0,2}\Z", re.ASCII)
_SPECIAL_FLOATS = ("NaN", "Infinity", "-Infinity")


def _not_json_number(value: Any) -> bool:
    return isinstance(value, str) and not _JSON_NUMBER.match(value) and value not in _SPECIAL_FLOATS


def _rounds_to_integer(value: Any) -> bool:
    if not isinstance(value, str) or not _JSON_NUMBER.match(value):
        return False
    try:
        exact = Decimal(value)
        return exact != exact.to_integral_value() and float(value).is_integer()
    except ArithmeticError:  # an exponent beyond what Decimal's context takes
        return False


def _overflows(value: Any) -> bool:
    """A finite number, or number text, too large for a float32 field (or, as text or as a big
    integer, for a double field): json_format makes it an infinity."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return False
    if isinstance(value, str) and not _JSON_NUMBER.match(value):
        return False
    try:
        number = float(value)
    except OverflowError:
        return True
    except ValueError:
        return False
    try:
        struct.pack("<f", number)
    except OverflowError:
        return True
    return math.isinf(number) and not isinstance(value, float)


def _int_parses(value: Any) -> bool:
    try:
        int(value)
    except (TypeError, ValueError, OverflowError):
        return False
    return True


def _binary_reads_back(message: Message) -> bool:
    """Whether the message, and every message packed in its Anys, reads back from binary."""
    try:
        canonical(type(message).FromString(message.SerializeToString()))
    except DecodeError:
        return False
    return True


def _has_non_finite(tree: Any) -> bool:
    stack = [tree]
    while stack:
        value = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            return True
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, Pairs):
            stack.extend(v for _, v in value)
        elif isinstance(value, list):
            stack.extend(value)
    return False


def _two_spellings(reason: str) -> bool:
    match = re.search(r"given twice, as '(\w+)' and '(\w+)'", reason)
    return match is not None and match.group(1) != match.group(2)


def _lax_timestamp(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    match = _RFC3339.match(value)
    if match is None:
        return True
    hours, minutes = match.groups()
    return hours is not None and (int(hours) > 23 or int(minutes) > 59)


# (name, reason pattern, check of the offending input: the value at the error's path, the
# error, the whole input, and json_format's reading of it). Each is a place where
# json_format's reading is lax in a way that loses data or takes text that is not proto3
# JSON; STRICTER_EXAMPLES below (and test_codec.py) pin an example of each.
STRICTER: list[tuple[str, re.Pattern[str], Callable[..., bool]]] = [
    (
        # Python's int() and float() take "1_000", " 1", "+1", "\uff11", "inf", "1.": not JSON.
        "number text that is not a JSON number",
        re.compile(r"expected an? (int32|int64|uint32|uint64|float|double)\b"),
        lambda value, e, tree, theirs: _not_json_number(value),
    ),
    (
        # json_format reads number text that int() refuses through a double, which rounds
        # 1.0000000000000000001e2 to 100: the exact value is no integer.
        "number text whose exact value is not an integer",
        re.compile(r"expected an? (int32|int64|uint32|uint64), got string "),
        lambda value, e, tree, theirs: _rounds_to_integer(value),
    ),
    (
        "a bool for a float or double",
        re.compile(r"expected an? (float|double), got (true|false)\Z"),
        lambda value, e, tree, theirs: isinstance(value, bool),
    ),
    (
        # json_format turns these into infinities.
        "a finite number too large for the field",
        re.compile(r"(float|double) out of range"),
        lambda value, e, tree, theirs: _overflows(value),
    ),
    (
        # json_format drops characters outside the alphabet, and extra padding.
        "base64 with characters outside the alphabet",
        re.compile(r"expected base64 text, found characters outside the alphabet\Z"),
        lambda value, e, tree, theirs: isinstance(value, str) and not _BASE64_TEXT.match(value),
    ),
    (
        # json_format takes int() of whatever is not a name: 1.5, true, "1", " 2 ".
        "an enum value that is neither a name nor a number",
        re.compile(r"expected a name of enum |unknown name .* of enum "),
        lambda value, e, tree, theirs: (
            isinstance(value, bool)
            or (isinstance(value, float) and not value.is_integer())
            or (isinstance(value, str) and _int_parses(value))
        ),
    ),
    (
        # json_format (upb) takes the number modulo 2**32: 4294967297 reads as 1.
        "an enum number outside int32",
        re.compile(r"enum number out of int32 range: "),
        lambda value, e, tree, theirs: (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and float(value).is_integer()
            and not -(2**31) <= value < 2**31
        ),
    ),
    (
        "a map key that is not the integer's canonical text",
        re.compile(r"expected an integer map key, got "),
        lambda value, e, tree, theirs: not re.fullmatch(r"-?[0-9]+", e.segments[-1], re.ASCII),
    ),
    (
        # json_format's strptime reading takes one-digit fields, "00.Z", offsets of 24h.
        "a timestamp that is not RFC 3339",
        re.compile(r"RFC 3339 timestamp|invalid UTC offset in timestamp"),
        lambda value, e, tree, theirs: _lax_timestamp(value),
    ),
    (
        # json_format drops a tenth fraction digit, takes "1.s", "+1s", " 1s", "1.5 s".
        "a duration that is not the canonical form",
        re.compile(r"expected a duration such as "),
        lambda value, e, tree, theirs: isinstance(value, str) and not _DURATION.match(value),
    ),
    (
        # json_format iterates the value as if it were an object: nothing in "" or [].
        "an empty string or array for a message",
        re.compile(r"\(a JSON object\), got (an array|string '')\Z"),
        lambda value, e, tree, theirs: value in ([], ""),
    ),
    (
        # json_format keeps the last of the two silently.
        "the same field under both of its names",
        re.compile(r"field '\w+' is given twice, as '\w+' and '\w+'\Z"),
        lambda value, e, tree, theirs: _two_spellings(e.reason),
    ),
    (
        # json_format ignores every key but "value" beside a well-known type in an Any.
        "an unknown key beside a well-known type in an Any",
        re.compile(r"unknown key .*: an Any holding google\.protobuf\.\w+ has only "),
        lambda value, e, tree, theirs: True,
    ),
    (
        # json_format takes the text after the last slash, if any, as the type name.
        "a type URL without a slash",
        re.compile(r"type URL .* is not of the form <prefix>/<full message name>"),
        lambda value, e, tree, theirs: isinstance(value, str) and "/" not in value,
    ),
    (
        # json.loads reads NaN and Infinity, which json_format then takes in a Value.
        "NaN or Infinity, which are not JSON",
        re.compile(r"\A(NaN|Infinity|-Infinity) is not JSON"),
        lambda value, e, tree, theirs: _has_non_finite(tree),
    ),
    (
        # json_format looks a key up in upb's fields_by_name, which reads the name as a C
        # string: "single_int32\u0000junk" finds single_int32.
        "a field name cut short at a NUL character",
        re.compile(r"\Aunknown field '"),
        lambda value, e, tree, theirs: "\x00" in e.segments[-1],
    ),
    (
        # json_format counts a level per Struct and per Value; the binary decoder (limit 100)
        # also counts the map entry around each Struct member, and the codec refuses what it
        # could not read back (test_struct_too_deep_for_binary_is_refused).
        "nesting the binary decoder cannot read back",
        re.compile(r"\Amessages nested more than 100 levels deep\Z"),
        lambda value, e, tree, theirs: not _binary_reads_back(theirs),
    ),
]


def stricter_category(error: ConversionError, tree: Any, theirs: Message) -> str | None:
    """The documented category the refusal falls in, or None."""
    try:
        value = _get(tree, error.segments)
    except (KeyError, IndexError, TypeError):
        value = None
    for name, pattern, check in STRICTER:
        if pattern.search(error.reason) and check(value, error, tree, theirs):
            return name
    return None


def _exact_integers(tree: Any, path: tuple) -> Any:
    """The tree with the mutated value, if it is integer text in exponent or fraction form,
    spelled as the plain integer: json_format reads such text through a double and rounds
    (test_exponent_integer_is_read_exactly), so it reads the plain form as the codec reads
    the original."""
    value = _get(tree, path) if path is not None else None
    if not isinstance(value, str) or not _JSON_NUMBER.match(value):
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        return None
    if abs(number.adjusted()) > 40 or number != number.to_integral_value():
        return None
    return _replace(copy.deepcopy(tree), path, str(int(number)))


# json_format crashes on null for a repeated google.protobuf.Value field: it takes the null
# as the one Value of the field and calls null_value on the list. The mapping reads null as
# "not set" for every field, repeated ones included, and so does the codec.
_NULL_FOR_REPEATED_VALUE = "RepeatedCompositeContainer' object has no attribute 'null_value'"


def _unset_instead_of_null(tree: Any, path: tuple | None, their_error: Exception) -> Any:
    """The tree without the member replaced by null at ``path``, when json_format crashed on
    that null for a repeated Value field; otherwise None."""
    if path is None or not path or _NULL_FOR_REPEATED_VALUE not in str(their_error):
        return None
    parent = _get(tree, path[:-1])
    if not isinstance(parent, dict) or parent.get(path[-1], 0) is not None:
        return None
    unset = copy.deepcopy(tree)
    del _get(unset, path[:-1])[path[-1]]
    return unset


def _note(text: str) -> None:
    if currently_in_test_context():
        note(text)


def _event(text: str) -> None:
    if currently_in_test_context():
        event(text)


def check_input(text: str, cls: type[Message], path: tuple | None = None) -> str:
    """Both read the input, and agree as the module docstring says; returns the outcome.

    ``path``: where the input differs from a valid message's JSON, when a value was replaced.
    """
    _note(f"input: {text}")
    tree = loads(text)
    try:
        theirs: Message | None = theirs_parse(text, cls)
        their_error: Exception | None = None
    except Exception as e:  # json_format raises other types too, e.g. RecursionError
        theirs, their_error = None, e
    try:
        ours: Message | None = ours_parse(text, cls)
        our_error: ConversionError | None = None
    except ConversionError as e:
        ours, our_error = None, e
    # The same text as UTF-8 bytes reads the same (unless it holds a lone surrogate, which
    # UTF-8 cannot encode).
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        data = None
    if data is not None:
        try:
            from_bytes: Message | ConversionError = ours_parse(data, cls)
        except ConversionError as e:
            from_bytes = e
        if our_error is None:
            assert isinstance(from_bytes, Message) and ours is not None
            assert_same(from_bytes, ours)
        else:
            assert isinstance(from_bytes, ConversionError)
            assert str(from_bytes) == str(our_error)
    _note(f"json_format: {their_error!r}")
    _note(f"codec: {our_error}")

    if their_error is not None:
        if our_error is None:
            # Documented leniency: the codec reads the float32 maximum as json_format prints
            # it (3.4028235e+38), which json_format refuses (protobuf#8336).
            if re.search(r"Float value too (large|small)", str(their_error)):
                return "both read (codec reads the float32 maximum json_format refuses)"
            exact = _exact_integers(tree, path)
            if exact is not None:
                assert_same(ours, theirs_parse(dumps(exact), cls))
                return "codec reads an exponent integer exactly, json_format rounds it"
            unset = _unset_instead_of_null(tree, path, their_error)
            if unset is not None:
                assert_same(ours, theirs_parse(dumps(unset), cls))
                return "codec reads null for a repeated Value as unset, json_format crashes"
            raise AssertionError(
                f"json_format refuses ({their_error}) what the codec reads:\n{text}"
            )
        return "both refuse"
    if our_error is None:
        assert theirs is not None and ours is not None
        if canonical(ours) != canonical(theirs):
            exact = _exact_integers(tree, path)
            assert exact is not None, f"read differently:\n{text}\n{ours}\n!=\n{theirs}"
            assert_same(ours, theirs_parse(dumps(exact), cls))
            return "codec reads an exponent integer exactly, json_format rounds it"
        return "both read"
    category = stricter_category(our_error, tree, theirs)
    assert category is not None, (
        f"the codec refuses, json_format reads; not a documented strictness:\n{text}\n{our_error}"
    )
    return f"stricter: {category}"


@st.composite
def mutated_inputs(draw: st.DrawFn) -> tuple[type[Message], str, str, tuple | None]:
    """(message type, JSON text, what was changed, path of the replaced value or None)."""
    message = draw(test_messages)
    if draw(st.integers(0, 9)) == 9:
        # Text escaped or not: what the codec reads with orjson and json.loads alike.
        text = dumps(json.loads(to_json(message, registry=REGISTRY)), draw(st.booleans()))
        return type(message), draw(_edited_text(text)), "text edit", None
    tree, how, path = draw(mutated_json(message))
    return type(message), dumps(tree), how, path


MUTATIONS = settings(PROPERTY, max_examples=600)


@MUTATIONS
@given(mutated_inputs())
def test_mutated_input_is_refused_when_json_format_refuses_it(case: tuple) -> None:
    cls, text, how, path = case
    note(how)
    event(check_input(text, cls, path))


# Each documented strictness, once: json_format reads the input, the codec refuses it, and
# the refusal is recognised as what it is (so that STRICTER cannot silently stop matching).
STRICTER_EXAMPLES = [
    ("number text that is not a JSON number", '{"singleInt32":"1_000"}'),
    ("number text that is not a JSON number", '{"singleDouble":" 1"}'),
    ("number text whose exact value is not an integer", '{"singleInt64":"1e-400"}'),
    ("number text whose exact value is not an integer", '{"singleUint32":"1.00000000000000001"}'),
    ("a bool for a float or double", '{"singleDouble":true}'),
    ("a finite number too large for the field", '{"singleFloat":"3.5e38"}'),
    ("a finite number too large for the field", '{"repeatedDouble":["1e309"]}'),
    ("a finite number too large for the field", '{"wktFloatValue":' + str(2**200) + "}"),
    ("base64 with characters outside the alphabet", '{"singleBytes":"A P8="}'),
    ("base64 with characters outside the alphabet", '{"repeatedBytes":["AP8==="]}'),
    ("an enum value that is neither a name nor a number", '{"shade":1.5}'),
    ("an enum value that is neither a name nor a number", '{"shades":["1"]}'),
    ("an enum value that is neither a name nor a number", '{"optionalShade":true}'),
    ("an enum number outside int32", '{"shade":4294967297}'),
    ("an enum number outside int32", '{"mapStringShade":{"a":-4294967295}}'),
    ("a map key that is not the integer's canonical text", '{"mapInt32String":{"1.0":"x"}}'),
    ("a map key that is not the integer's canonical text", '{"mapUint64String":{"+1":"x"}}'),
    ("a timestamp that is not RFC 3339", '{"wktTimestamp":"1970-01-01T00:00:00.Z"}'),
    ("a timestamp that is not RFC 3339", '{"repeatedTimestamp":["1970-01-01T00:00:00+24:00"]}'),
    ("a duration that is not the canonical form", '{"wktDuration":"1.0000000001s"}'),
    ("a duration that is not the canonical form", '{"mapStringDuration":{"a":"1.5 s"}}'),
    ("an empty string or array for a message", '{"nested":[]}'),
    ("an empty string or array for a message", '{"payload":""}'),
    ("the same field under both of its names", '{"singleInt32":1,"single_int32":2}'),
    ("the same field under both of its names", '{"customName":"a","renamed_field":"b"}'),
    (
        "an unknown key beside a well-known type in an Any",
        '{"wktAny":{"@type":"type.googleapis.com/google.protobuf.Duration","value":"1s","x":1}}',
    ),
    ("a type URL without a slash", '{"wktAny":{"@type":"richtest.v1.Payload"}}'),
    ("NaN or Infinity, which are not JSON", '{"wktValue":NaN}'),
    ("NaN or Infinity, which are not JSON", '{"wktStruct":{"a":[-Infinity]}}'),
    ("a field name cut short at a NUL character", '{"single_int32\\u0000x":1}'),
    (
        "nesting the binary decoder cannot read back",
        '{"wktStruct":' + '{"a":' * 40 + "1" + "}" * 41,
    ),
]


@pytest.mark.parametrize(("category", "text"), STRICTER_EXAMPLES)
def test_each_documented_strictness_is_recognised(category: str, text: str) -> None:
    theirs_parse(text, Rich)  # json_format reads it: pinned, so a change there shows here
    assert check_input(text, Rich) == f"stricter: {category}"


# --- regressions: disagreements the properties found, fixed in the codec since -----------


@pytest.mark.parametrize("number", [1, -217, 2**31 - 1])
def test_any_null_value_number_prints_as_null(number: int) -> None:
    # An open enum: NullValue holds any number, and json_format prints each as null (the
    # codec printed the number).
    message = Rich(wkt_null_value=number, choice_null=number)
    assert json.loads(to_json(message, registry=REGISTRY)) == theirs_dict(message)
    assert to_dict(message, registry=REGISTRY) == {"wktNullValue": None, "choiceNull": None}


@pytest.mark.parametrize(
    "text",
    ['{"singleInt32":"0e50"}', '{"singleUint64":"-0.0e-60"}', '{"repeatedFixed32":["0E41"]}'],
)
def test_zero_in_exponent_form_is_an_integer(text: str) -> None:
    # The proto3 JSON mapping takes integers in exponent form, and 0e50 is the integer 0
    # (json_format reads it so); the codec refused a zero whose exponent is beyond +-40.
    assert check_input(text, Rich) == "both read"


def test_null_for_a_repeated_value_field_is_unset() -> None:
    # Found by the mutation property: json_format crashes (AttributeError, wrapped in its
    # ParseError) on null for a repeated google.protobuf.Value; null is "not set" for every
    # field in the mapping, and the codec reads the field as empty.
    text = '{"singleInt32":1,"repeatedValue":null}'
    outcome = "codec reads null for a repeated Value as unset, json_format crashes"
    assert check_input(text, Rich, ("repeatedValue",)) == outcome
    assert list(ours_parse(text, Rich).repeated_value) == []


_BELOW_INT64 = -(2**63) - 1


@pytest.mark.parametrize(
    "text",
    [
        f'{{"singleInt64":{_BELOW_INT64}}}',
        f'{{"repeatedSfixed64":[{-(2**63) - 1000}]}}',
        f'{{"mapStringInt64":{{"a":{_BELOW_INT64}}}}}',
        f'{{"wktInt64Value":{_BELOW_INT64}}}',
    ],
)
def test_integer_below_int64_is_out_of_range(text: str) -> None:
    # json_format refuses these; the codec read them as -2**63: orjson reads a JSON integer
    # outside [-2**63, 2**64) as a double, which rounds these into range.
    with pytest.raises(json_format.ParseError):
        theirs_parse(text, Rich)
    with pytest.raises(ConversionError):
        ours_parse(text, Rich)


@pytest.mark.parametrize("levels", [254, 255, 1024, 1025])
def test_deeply_nested_json_is_a_conversion_error(levels: int) -> None:
    # JSON nested 255 to 1024 levels deep: orjson reads the text but cannot write it back
    # (its limit is 254), and its JSONEncodeError (a TypeError) escaped from from_json.
    arrays = levels - 1  # inside the object
    text = '{"wktValue":' + "[" * arrays + "]" * arrays + "}"
    with pytest.raises(json_format.ParseError):
        theirs_parse(text, Rich)
    with pytest.raises(ConversionError):
        ours_parse(text, Rich)
    with pytest.raises(ConversionError):
        ours_parse(text.encode(), Rich)


# --- map keys are written sorted ---------------------------------------------------------

SORTED_KEYS = {
    "mapStringString": ["", "A", "a", "ab", "b", "é", "\uffff", "\U0001f600"],
    "mapInt32String": ["-2147483648", "-10", "-2", "0", "3", "10", "2147483647"],
    "mapInt64String": ["-9223372036854775808", "-1", "0", "9", "10", "9223372036854775807"],
    "mapUint64String": ["0", "1", "2", "10", "9223372036854775808", "18446744073709551615"],
    "mapSint32String": ["-5", "-1", "0", "1", "5"],
    "mapSfixed64String": ["-300", "-3", "3", "300"],
    "mapFixed32String": ["0", "7", "70", "4294967295"],
    "mapBoolString": ["false", "true"],
}


@pytest.mark.parametrize("reverse", [False, True])
def test_map_keys_are_written_sorted_at_every_level(reverse: bool) -> None:
    # Whatever order the maps were filled in (their own iteration order is upb's, seeded
    # per process), the text lists every map's and Struct's keys sorted: strings by code
    # point, integers numerically, false before true; in an Any payload too.
    order = reversed if reverse else list
    value: dict[str, Any] = {
        field: {key: key for key in order(keys)} for field, keys in SORTED_KEYS.items()
    }
    value["wktStruct"] = {k: {"z": 1, "a": [{"y": 2, "b": 3}]} for k in order(["b", "a", "c"])}
    value["wktAny"] = {
        "@type": "type.googleapis.com/richtest.v1.Payload",
        "tags": {k: k for k in order(["q", "c", "m"])},
    }
    message = from_dict(value, message_type=Rich, registry=REGISTRY)
    expected = {field: {key: key for key in keys} for field, keys in SORTED_KEYS.items()}
    expected["wktStruct"] = {k: {"a": [{"b": 3.0, "y": 2.0}], "z": 1.0} for k in ["a", "b", "c"]}
    expected["wktAny"] = {
        "@type": "type.googleapis.com/richtest.v1.Payload",
        "tags": {k: k for k in ["c", "m", "q"]},
    }
    text = to_json(message, registry=REGISTRY)
    assert json.loads(text) == expected
    fields = list(json.loads(text))
    assert text == json.dumps(
        {k: expected[k] for k in fields}, ensure_ascii=False, separators=(",", ":")
    )
