"""decode_text (JSON text straight to wire bytes, in C) against its oracle.

The contract: whenever ``_native.decode_text(table, text, ...)`` returns bytes, the text is
JSON that ``jsontext.loads`` reads, and ``_native.decode`` of that value, with the same
arguments, returns the same bytes; otherwise it declines (NotImplemented). Checked on text
from several writers (ours, json_format, a writer with random whitespace, escapes, key
orders and snake_case keys), on mutated text, and on the golden files; and from_json, which
uses it, gives the same answer or the same ConversionError with the core on and off.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message
from hypothesis import event, given, note, settings
from hypothesis import strategies as st
from test_codec_differential import (
    POOL,
    PROPERTY,
    REGISTRY,
    Payload,
    Rich,
    mutated_inputs,
    test_messages,
)
from test_native import both

from bench.corpus import make_corpus
from v1op_pb import ConversionError, Operation, TypeRegistry, from_json, to_json
from v1op_pb._codec import jsontext, native_stats
from v1op_pb._codec.codec import PURE_PYTHON_VARIABLE, Codec, _repack_maps
from v1op_pb._codec.descriptors import is_repeated
from v1op_pb._codec.plan import TABLES, TABLES_BY_CLASS, FieldSpec, TableSpec, _native, table_for
from v1op_pb._registry import default_registry

pytestmark = [
    pytest.mark.skipif(_native is None, reason="the native core is not built"),
    pytest.mark.skipif(
        os.environ.get(PURE_PYTHON_VARIABLE, "") not in ("", "0"),
        reason="pure-Python mode: the codec tests run without the native core",
    ),
]

GOLDEN = Path(__file__).resolve().parents[1] / "golden"


def oracle(
    cls: type[Message],
    text: str | bytes,
    ignore_unknown: bool = False,
    registry: TypeRegistry = REGISTRY,
) -> str:
    """decode_text's answer checked against decode(jsontext.loads(text)): "converted" or
    "declined"."""
    assert _native is not None
    codec = Codec(registry, ignore_unknown_fields=ignore_unknown)
    descriptor: Descriptor = cls.DESCRIPTOR  # type: ignore[assignment]
    table = TABLES.get(descriptor) or table_for(descriptor)
    args = (ignore_unknown, codec._table_of_url, registry.by_url, TABLES_BY_CLASS, _repack_maps())
    ours = _native.decode_text(table, text, *args)
    if ours is NotImplemented:
        return "declined"
    value = jsontext.loads(text)  # must read: the core took only JSON
    theirs = _native.decode(table, value, *args)
    assert theirs is not NotImplemented, "decode_text took what decode declines"
    assert ours == theirs
    cls().MergeFromString(ours)
    return "converted"


# --- writers ---------------------------------------------------------------------------------

WHITESPACE = ["", "", "", " ", "\n", "\t", "\r\n  "]


def write_string(s: str, rnd: random.Random) -> str:
    out = ['"']
    for ch in s:
        code = ord(ch)
        if rnd.random() < 0.15:  # any character may be escaped
            if code > 0xFFFF:
                code -= 0x10000
                out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04X}")
            else:
                out.append(f"\\u{code:04x}")
        elif ch in '"\\':
            out.append("\\" + ch)
        elif ch == "/" and rnd.random() < 0.5:
            out.append("\\/")
        elif code < 0x20:
            out.append(rnd.choice([json.dumps(ch)[1:-1], f"\\u{code:04X}"]))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def write_number(v: float, rnd: random.Random) -> str:
    if isinstance(v, float) and rnd.random() < 0.3:
        return format(v, rnd.choice([".17g", ".17e", ""]))  # the same double, spelled otherwise
    return json.dumps(v)


def write(value: Any, rnd: random.Random) -> str:
    """JSON text of value with random whitespace, escapes and key order ("@type" first)."""

    def ws() -> str:
        return rnd.choice(WHITESPACE)

    if isinstance(value, dict):
        items = list(value.items())
        rnd.shuffle(items)
        items.sort(key=lambda kv: kv[0] != "@type")
        members = [
            f"{ws()}{write_string(k, rnd)}{ws()}:{ws()}{write(v, rnd)}{ws()}" for k, v in items
        ]
        return "{" + ",".join(members) + ws() + "}"
    if isinstance(value, list):
        return "[" + ",".join(f"{ws()}{write(v, rnd)}{ws()}" for v in value) + ws() + "]"
    if isinstance(value, str):
        return write_string(value, rnd)
    if isinstance(value, float):
        return write_number(value, rnd)
    return json.dumps(value)


_OWN_FORM = {
    "google.protobuf.Struct",
    "google.protobuf.Value",
    "google.protobuf.ListValue",
    "google.protobuf.Timestamp",
    "google.protobuf.Duration",
    "google.protobuf.FieldMask",
    "google.protobuf.BytesValue",
    *(
        f"google.protobuf.{w}Value"
        for w in (
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
    ),
}


def snake_keys(value: Any, descriptor: Descriptor, rnd: random.Random) -> Any:
    """value with some keys under their proto field names, as the mapping allows."""
    if not isinstance(value, dict) or descriptor.full_name in _OWN_FORM:
        return value
    if descriptor.full_name == "google.protobuf.Any":
        url = value.get("@type")
        if not isinstance(url, str) or "value" in value:
            return value
        inner = POOL.FindMessageTypeByName(url.rpartition("/")[2])
        rest = snake_keys({k: v for k, v in value.items() if k != "@type"}, inner, rnd)
        return {"@type": url, **rest}
    by_json = {f.json_name: f for f in descriptor.fields}
    out = {}
    for key, item in value.items():
        field = by_json.get(key)
        if field is None:
            out[key] = item
            continue
        new_key = field.name if rnd.random() < 0.5 else key
        sub = field.message_type
        if sub is not None and item is not None:
            if sub.GetOptions().map_entry:
                value_field = sub.fields_by_name["value"]
                if value_field.message_type is not None:
                    item = {
                        k: snake_keys(v, value_field.message_type, rnd) for k, v in item.items()
                    }
            elif is_repeated(field):
                item = [snake_keys(v, sub, rnd) for v in item]
            else:
                item = snake_keys(item, sub, rnd)
        out[new_key] = item
    return out


@settings(PROPERTY, max_examples=120)
@given(test_messages, st.booleans(), st.randoms(use_true_random=False))
def test_our_output_reads_with_no_declines(message: Message, unpopulated: bool, rnd: Any) -> None:
    text = to_json(message, registry=REGISTRY, emit_unpopulated=unpopulated)
    data: str | bytes = text.encode() if rnd.random() < 0.5 else text
    assert oracle(type(message), data) == "converted"


@settings(PROPERTY, max_examples=120)
@given(test_messages, st.booleans(), st.booleans())
def test_json_formats_output_reads_as_its_value(
    message: Message, proto_names: bool, indent: bool
) -> None:
    text = json_format.MessageToJson(
        message,
        descriptor_pool=POOL,
        preserving_proto_field_name=proto_names,
        indent=2 if indent else None,
    )
    event(oracle(type(message), text))


@settings(PROPERTY, max_examples=150)
@given(test_messages, st.randoms(use_true_random=False), st.booleans())
def test_any_writers_text_reads_as_its_value(message: Message, rnd: Any, snake: bool) -> None:
    value = json.loads(to_json(message, registry=REGISTRY))
    if snake:
        value = snake_keys(value, message.DESCRIPTOR, rnd)
    text = write(value, rnd)
    note(text)
    data: str | bytes = text.encode() if rnd.random() < 0.5 else text
    result = oracle(type(message), data)
    event(f"{'snake_case ' if snake else ''}{result}")
    if not snake:  # renamed keys may clash with another field's name: declined then
        assert result == "converted"


# The text path reads a fraction or exponent of any length as the correctly rounded double.
# jsontext gives json.loads's reading (float(): correctly rounded) for text with a run of 19
# digits, orjson's otherwise: this checks that orjson's is the correctly rounded one too.
FLOAT_TEXT = st.builds(
    lambda whole, fraction, exponent: f"{whole}.{fraction}{exponent}",
    st.from_regex(r"\A-?(0|[1-9][0-9]{0,17})\Z"),
    st.from_regex(r"\A[0-9]{1,18}\Z"),
    st.one_of(st.just(""), st.integers(-330, 310).map(lambda e: f"e{e}")),
)


@settings(PROPERTY, max_examples=300)
@given(st.one_of(FLOAT_TEXT, st.floats(allow_nan=False, allow_infinity=False).map(repr)))
def test_orjson_reads_floats_correctly_rounded(text: str) -> None:
    value = jsontext.loads(f"[{text}]")[0]
    assert value == float(text)
    if math.isfinite(value):
        assert oracle(Rich, f'{{"singleDouble": {text}}}') == "converted"


# --- mutated text ----------------------------------------------------------------------------


def _mutate(text: bytes, rnd: random.Random) -> tuple[bytes, str]:
    how = rnd.choice(["flip", "truncate", "duplicate", "number", "escape", "insert", "space"])
    if how == "space":  # whitespace after a comma or colon: still valid JSON, if it was
        spots = [i + 1 for i, c in enumerate(text) if c in b",:"]
        if spots:
            i = rnd.choice(spots)
            return text[:i] + rnd.choice([b" ", b"\t", b"\r\n", b"\x0b", b"\xc2\xa0"]) + text[
                i:
            ], how
    if how == "flip" and text:
        i = rnd.randrange(len(text))
        return text[:i] + bytes([rnd.randrange(256)]) + text[i + 1 :], how
    if how == "truncate":
        return text[: rnd.randrange(len(text) + 1)], how
    if how == "duplicate":  # a member written twice: "key": value, "key": value
        starts = [i for i, c in enumerate(text) if c == ord('"')]
        colons = [i for i, c in enumerate(text) if c == ord(":")]
        if starts and colons:
            colon = rnd.choice(colons)
            start = max([s for s in starts if s < colon - 1] or [0])
            start = text.rfind(b'"', 0, start) if start else 0
            end = colon + 1
            while end < len(text) and text[end] not in b",}":
                end += 1
            member = text[start:end]
            return text[:end] + b"," + member + text[end:], how
    if how == "number":
        spots = [i for i, c in enumerate(text) if c in b"0123456789"]
        odd = rnd.choice(
            [
                b"1.0",
                b"1e2",
                b"-0",
                b"-0.0",
                b"01",
                b"1E400",
                b"-1e-400",
                b"1234567890123456789",
                b"123456789012345678",
                b"0.1234567890123456789",
                b"2.5e-3",
                b"NaN",
                b"Infinity",
                b"-",
                b"1.",
                b".5",
                b"1e",
                b"4294967296",
                b"-2147483649",
                b"9007199254740993",
            ]
        )
        if spots:
            i = rnd.choice(spots)
            return text[:i] + odd + text[i + 1 :], how
    if how == "escape":
        quotes = [i for i, c in enumerate(text) if c == ord('"')]
        odd = rnd.choice(
            [
                b"\\ud800",
                b"\\udc00",
                b"\\ud83d\\ude00",
                b"\\u0000",
                b"\\x",
                b"\\u12",
                b"\\U0041",
                b"\\u003a",
                b"\xff",
                b"\xc3\xa9",
                b"\xed\xa0\x80",
                b"\xc0\xaf",
                b"\x01",
                b"\\/",
            ]
        )
        if quotes:
            i = rnd.choice(quotes) + 1
            return text[:i] + odd + text[i:], how
    if how == "insert":
        i = rnd.randrange(len(text) + 1)
        return text[:i] + rnd.choice(
            [b" ", b",", b"{}", b"[]", b"null", b'"@type":"x",', b"\xef\xbb\xbf"]
        ) + text[i:], how
    return text, "none"


@settings(PROPERTY, max_examples=250)
@given(test_messages, st.randoms(use_true_random=False), st.booleans())
def test_mutated_text_is_declined_or_read_as_its_value(
    message: Message, rnd: Any, as_text: bool
) -> None:
    text = write(json.loads(to_json(message, registry=REGISTRY)), rnd).encode()
    for _ in range(rnd.choice([1, 1, 1, 2, 3])):
        text, how = _mutate(text, rnd)
        note(f"{how}: {text!r}")
    data: str | bytes = text
    if as_text:
        with contextlib.suppress(UnicodeDecodeError):
            data = text.decode("utf-8")
    event(oracle(type(message), data))
    event(f"ignore_unknown: {oracle(type(message), data, ignore_unknown=True)}")
    cls = type(message)
    ours, theirs, _ = both(lambda: from_json(data, message_type=cls, registry=REGISTRY))
    assert ours == theirs


@settings(PROPERTY, max_examples=200)
@given(mutated_inputs())
def test_mutated_values_text_gets_the_python_codecs_answer(case: tuple) -> None:
    cls, text, how, _ = case
    note(how)
    event(oracle(cls, text))
    ours, theirs, stats = both(lambda: from_json(text, message_type=cls, registry=REGISTRY))
    assert ours == theirs
    assert stats["wire_refused"] == 0


PAYLOAD_WITH_MAP = (
    '{"wktAny": {"@type": "type.googleapis.com/richtest.v1.Payload", "tags": {"b": "1", "a": "2"}}}'
)
ODD_TEXTS = [
    "",
    " ",
    "null",
    "[]",
    "{}",
    " {} ",
    "\ufeff{}",
    "{}x",
    "{},",
    '{"singleInt32": 1,}',
    '{"singleInt32": 1.0}',
    '{"singleInt32": 1e0}',
    '{"singleInt32": -0}',
    '{"singleInt32": 01}',
    '{"singleInt32": 2147483648}',
    '{"singleInt64": 123456789012345678}',
    '{"singleInt64": 1234567890123456789}',
    '{"singleUint64": 18446744073709551615}',
    '{"singleDouble": -0}',
    '{"singleDouble": -0.0}',
    '{"singleDouble": 1E400}',
    '{"singleDouble": 1e-400}',
    '{"singleDouble": 0.1}',
    '{"singleDouble": 9007199254740993}',
    '{"singleDouble": 0.30000000000000004}',
    '{"singleDouble": 123456789012345.678}',
    '{"singleFloat": 3.4028235e38}',
    '{"singleFloat": 3.5e38}',
    '{"singleDouble": NaN}',
    '{"singleDouble": Infinity}',
    '{"singleDouble": "NaN"}',
    '{"singleDouble": "-Infinity"}',
    '{"singleBool": 1}',
    '{"singleBool": "true"}',
    '{"singleString": null}',
    '{"singleString": "\\ud800"}',
    '{"singleString": "\\udc00\\ud800"}',
    '{"singleString": "\\ud83d\\ude00"}',
    '{"singleString": "\\u0000\\/\\b\\f\\n\\r\\t"}',
    '{"singleString": "\\x"}',
    '{"singleString": "a\tb"}',
    '{"singleString": "a", "singleString": "b"}',
    '{"singleString": "a", "single_string": "b"}',
    '{"single_string": "a"}',
    '{"nope": 1}',
    '{"[ext]": 1}',
    '{"shade": "SHADE_VERDE"}',
    '{"shade": 1.0}',
    '{"shade": true}',
    '{"shade": null}',
    '{"repeatedInt32": [1, null]}',
    '{"repeatedInt32": []}',
    '{"repeatedInt32": [1, 2.5]}',
    '{"repeatedString": ["a", "", "\\u00e9"]}',
    '{"mapInt32String": {"1": "a", "01": "b"}}',
    '{"mapInt32String": {"1": "a", "1": "b"}}',
    '{"mapInt32String": {"-1": "a", "0": "b", "7": "c"}}',
    '{"mapStringString": {"b": "1", "a": "2", "ab": "3", "": "4"}}',
    '{"mapStringString": {"a": "1", "a": "2"}}',
    '{"mapStringString": {"a": null}}',
    '{"mapBoolString": {"true": "a", "false": "b"}}',
    '{"wktStruct": {"b": 1, "a": [1, "x", null, true, {"c": {}}], "": 2.5}}',
    '{"wktStruct": {"a": 1, "a": 2}}',
    '{"wktValue": null}',
    '{"wktValue": 12345678901234567}',
    '{"wktValue": [[[[]]]]}',
    '{"wktListValue": [1, "a"]}',
    '{"wktTimestamp": "2024-02-29T23:59:59.5+01:00"}',
    '{"wktTimestamp": "2024-02-29T23:59:59.5\\u002b01:00"}',
    '{"wktTimestamp": "2024-02-30T00:00:00Z"}',
    '{"wktDuration": "-1.5s"}',
    '{"wktFieldMask": "a.bC,d"}',
    '{"wktInt32Value": 0}',
    '{"wktStringValue": ""}',
    '{"wktStringValue": null}',
    '{"choiceText": "a", "choiceNumber": 1}',
    '{"choiceText": "a", "choiceValue": null}',
    '{"choiceValue": null}',
    '{"wktAny": {}}',
    '{"wktAny": {"@type": "type.googleapis.com/richtest.v1.Nope"}}',
    '{"wktAny": {"@type": "type.googleapis.com/google.protobuf.Duration", "value": "1s"}}',
    '{"wktAny": {"value": "1s", "@type": "type.googleapis.com/google.protobuf.Duration"}}',
    '{"wktAny": {"@type": "type.googleapis.com/google.protobuf.Duration"}}',
    '{"wktAny": {"@type": "type.googleapis.com/google.protobuf.Duration", "value": "1s", "x": 1}}',
    '{"wktAny": {"@type": "type.googleapis.com/richtest.v1.Payload", "label": "x"}}',
    '{"wktAny": {"label": "x", "@type": "type.googleapis.com/richtest.v1.Payload"}}',
    '{"wktAny": {"@type": "type.googleapis.com/richtest.v1.Payload", "@type": "x"}}',
    PAYLOAD_WITH_MAP,
    '{"wktAny": {"@type": 1}}',
    # Values passed over (an unknown field's, an Any's before its @type) are checked as
    # JSON all through: an object is an object after its first member too.
    '{"unknownField": {"a": 1, "b"]}',
    '{"unknownField": {"a": 1, "b": 2]}',
    '{"unknownField": [1, "b": 2}',
    '{"wktAny": {"x": {"a": 1, "b"], "@type": "type.googleapis.com/richtest.v1.Payload"}}',
    *('{"wktValue": ' + "[" * n + "]" * n + "}" for n in (97, 98, 99, 100, 101)),
    *('{"wktStruct": ' + '{"a": ' * n + "1" + "}" * n + "}" for n in (48, 49, 50, 51)),
]


@pytest.mark.parametrize("text", ODD_TEXTS, ids=repr)
@pytest.mark.parametrize("as_bytes", [False, True])
def test_odd_text_is_declined_or_read_as_its_value(text: str, as_bytes: bool) -> None:
    data: str | bytes = text.encode("utf-8", "surrogatepass") if as_bytes else text
    for ignore_unknown in (False, True):
        oracle(Rich, data, ignore_unknown)
    ours, theirs, _ = both(lambda: from_json(data, message_type=Rich, registry=REGISTRY))
    assert ours == theirs


def test_what_must_read_reads() -> None:
    for text in [
        '{"singleDouble": -0}',
        '{"mapStringString": {"b": "1", "a": "2", "ab": "3"}}',
        PAYLOAD_WITH_MAP,
        '{"singleString": "\\ud83d\\ude00"}',
        '{"single_string": "a"}',
        "{ }",
    ]:
        assert oracle(Rich, text) == "converted", text


def test_str_that_is_not_utf8_is_declined() -> None:
    text = '{"singleString": "\ud800"}'
    assert oracle(Rich, text) == "declined"
    with pytest.raises(ConversionError):
        from_json(text, message_type=Rich, registry=REGISTRY)


# --- the golden files and the benchmark corpus ------------------------------------------------


@pytest.mark.parametrize("path", sorted(GOLDEN.glob("*/*.json")), ids=lambda p: p.name)
def test_golden_files(path: Path) -> None:
    data = path.read_bytes()
    result = oracle(Operation, data, registry=default_registry)
    # The valid files the value path reads natively, the text path reads too.
    native_stats(reset=True)
    try:
        Codec(default_registry).decode(jsontext.loads(data), Operation)
    except ConversionError:
        assert result == "declined"
        return
    if path.parent.name == "valid" and native_stats()["parse_declined"] == 0:
        assert result == "converted"


def test_benchmark_corpus_reads_with_no_declines() -> None:
    native_stats(reset=True)
    for op in make_corpus(80, 3):
        text = to_json(op)
        assert oracle(Operation, text, registry=default_registry) == "converted"
        assert from_json(text) == op
        assert from_json(text.encode()) == op
    stats = native_stats()
    assert stats["parse_text"] == 3 * 80 and stats["parse_text_declined"] == 0, stats
    assert stats["parse_declined"] == stats["wire_refused"] == 0, stats


def test_payload_registered_at_run_time_is_found() -> None:
    registry = TypeRegistry(use_default_pool=False)
    text = '{"wktAny": {"@type": "type.googleapis.com/richtest.v1.Payload", "label": "x"}}'
    assert oracle(Rich, text, registry=registry) == "declined"
    registry.register(Payload.DESCRIPTOR)
    assert oracle(Rich, text, registry=registry) == "converted"


def test_a_json_name_that_is_another_fields_key_is_asked_of_the_key_table() -> None:
    # protoc refuses clashing JSON names; a table built by hand has them: field 1's JSON
    # name "a" is field 2's key, and the text path must read it as the key table says.
    assert _native is not None
    table = _native.Table()
    fields = tuple(
        FieldSpec(number, 5, 0, -1, number - 1, "a", None, None, None, None) for number in (1, 2)
    )
    table.init(TableSpec("t.Clash", 0, 0, fields, {"a": 1, "b": 0}, 0, None))
    args = (False, lambda url: None, {}, {}, False)
    for text, value in (('{"a": 7}', {"a": 7}), ('{"b": 7, "a": 1}', {"b": 7, "a": 1})):
        assert _native.decode_text(table, text, *args) == _native.decode(table, value, *args)
    assert _native.decode_text(table, '{"a": 7}', *args) == b"\x10\x07"
