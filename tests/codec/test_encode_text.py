"""encode_text (JSON text straight from the wire, native/emit_text.c) against its contract.

Whenever ``_native.encode_text(args)`` returns bytes B, ``_native.encode(args)`` returns a
value V (not NotImplemented) and ``orjson.dumps(V) == B``, byte for byte: every number,
string escape and key is spelled as orjson spells it. Checked on the rich test schema in every
option set, on numbers and strings chosen to hit orjson's spelling rules, on wire bytes no
serializer writes (inside Any payloads and at the top level), and through the public API:
``to_json`` writes what ``orjson.dumps(to_dict(...))`` writes, with the native core on or off.
"""

from __future__ import annotations

import math
import os
import struct
from typing import Any

import orjson
import pytest
from google.protobuf.message import Message
from hypothesis import event, given, note, settings
from hypothesis import strategies as st
from test_codec_differential import PROPERTY, REGISTRY, Payload, PoolAny, Rich, test_messages
from test_native import OPTIONS, WIRE_PAYLOADS, native

from bench.corpus import make_corpus
from v1op_pb import ConversionError, Operation, to_dict, to_json
from v1op_pb._codec import native_stats
from v1op_pb._codec.codec import PURE_PYTHON_VARIABLE, Codec
from v1op_pb._codec.plan import TABLES, TABLES_BY_CLASS, _native, table_for
from v1op_pb._registry import TypeRegistry, default_registry

pytestmark = [
    pytest.mark.skipif(_native is None, reason="the native core is not built"),
    pytest.mark.skipif(
        os.environ.get(PURE_PYTHON_VARIABLE, "") not in ("", "0"),
        reason="pure-Python mode: the codec tests run without the native core",
    ),
]


def core_args(
    cls: type[Message], data: bytes, registry: TypeRegistry, options: dict[str, bool]
) -> tuple[Any, ...]:
    codec = Codec(registry, **options)
    descriptor = cls.DESCRIPTOR
    return (
        TABLES.get(descriptor) or table_for(descriptor),
        data,
        codec.omit_output_only,
        codec.emit_unpopulated,
        codec._table_of_url,
        registry.by_url,
        TABLES_BY_CLASS,
    )


def contract(
    cls: type[Message],
    data: bytes,
    registry: TypeRegistry = REGISTRY,
    options: dict[str, bool] | None = None,
) -> bool:
    """Check the contract on these wire bytes; whether encode_text wrote text. Also: where
    encode converts, encode_text does not decline (on what serializers write)."""
    args = core_args(cls, data, registry, options or {})
    text = _native.encode_text(*args)
    value = _native.encode(*args)
    if text is NotImplemented:
        return False
    assert value is not NotImplemented, text
    assert orjson.dumps(value) == text
    return True


def serialized(message: Message) -> bytes:
    return message.SerializePartialToString()


# The same examples on every run: a failure here reproduces.
CHECKED = settings(PROPERTY, derandomize=True)


# --- valid messages: same text, no declines -------------------------------------------------


@CHECKED
@given(test_messages, st.sampled_from(OPTIONS))
def test_valid_messages_are_written_as_orjson_writes_their_value(
    message: Message, options: dict[str, bool]
) -> None:
    args = core_args(type(message), serialized(message), REGISTRY, options)
    value = _native.encode(*args)
    text = _native.encode_text(*args)
    if value is NotImplemented:  # e.g. a NaN in a Value: the Python codec reports it
        event("encode declined")
        return
    assert text is not NotImplemented  # what a serializer writes is never declined
    assert text == orjson.dumps(value)


@CHECKED
@given(test_messages, st.sampled_from(OPTIONS))
def test_to_json_is_orjson_of_to_dict_with_the_core_on_or_off(
    message: Message, options: dict[str, bool]
) -> None:
    with native(True):
        ours = to_json(message, registry=REGISTRY, **options)
        assert ours == orjson.dumps(to_dict(message, registry=REGISTRY, **options)).decode()
    with native(False):
        assert to_json(message, registry=REGISTRY, **options) == ours


# --- numbers and strings as orjson spells them ----------------------------------------------

DOUBLES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1e-300, max_value=1e-300),  # subnormals and tiny numbers
    st.sampled_from([0.0, -0.0, 1e16, 1e15, 9007199254740993.0, 1e-5, 1e-6, 5e-324, 1e308]),
    st.integers(-(2**60), 2**60).map(float),
    st.integers(-20, 20).map(lambda e: 10.0**e),
    st.integers(-20, 20).map(lambda e: -1.5 * 10.0**e),
    # a few decimals (written without dtoa: jsonfmt.c's few_decimals), at its limits too
    st.builds(lambda m, k: m / 10**k, st.integers(-(2**51), 2**51), st.integers(0, 10)),
    st.floats(min_value=1e-4, max_value=1e9),
    st.sampled_from([1e-4, 0.00010000000000000002, 999999999.9, 1e9, 0.1 + 0.2, 2.675]),
)
FLOATS = st.one_of(
    st.floats(width=32, allow_nan=True),
    st.sampled_from([3.4028234663852886e38, 1.401298464324817e-45, 1e-7, 16777217.0]),
)


@settings(CHECKED, max_examples=400)
@given(st.lists(DOUBLES, min_size=1, max_size=4), st.lists(FLOATS, min_size=1, max_size=4))
def test_numbers_are_spelled_as_orjson_spells_them(
    doubles: list[float], floats: list[float]
) -> None:
    message = Rich(single_double=doubles[0], single_float=floats[0])
    message.repeated_double.extend(doubles)
    message.repeated_float.extend(floats)
    for i, d in enumerate(doubles):
        message.map_string_double[f"k{i}"] = d
        message.map_fixed32_double[i] = d
        message.repeated_double_value.add(value=d)
        message.repeated_float_value.add(value=floats[i % len(floats)])
        if math.isfinite(d):  # a Value has no form for the others: encode declines
            message.repeated_value.add(number_value=d)
            message.wkt_struct.fields[str(i)].number_value = d
    note(repr((doubles, floats)))
    assert contract(Rich, serialized(message))


TEXT = st.text(st.characters(blacklist_categories=["Cs"]), max_size=12)
NASTY = st.sampled_from(['"', "\\", "/", "\x00", "\x1f", "\x7f", "\u2028", "é", "\U0001f600"])


@settings(CHECKED, max_examples=300)
@given(st.lists(st.one_of(TEXT, NASTY), min_size=1, max_size=5))
def test_strings_and_keys_are_escaped_as_orjson_escapes_them(texts: list[str]) -> None:
    message = Rich(single_string=texts[0])
    message.repeated_string.extend(texts)
    for text in texts:
        message.map_string_string[text] = text
        message.wkt_struct.fields[text].string_value = text
        message.repeated_value.add(string_value=text)
    payload = Payload(label=texts[0], tags={t: t for t in texts})
    message.wkt_any.type_url = "type.googleapis.com/richtest.v1.Payload"
    message.wkt_any.value = payload.SerializeToString()
    assert contract(Rich, serialized(message))


@pytest.mark.parametrize("special", ['"', "\\", "\x00", "\x1f", "\n", "\x7f", "é", "\U0001f600"])
def test_a_character_to_escape_is_seen_at_every_offset(special: str) -> None:
    # The writer looks at eight bytes at a time: a character to escape, or non-ASCII text to
    # check, must be seen wherever it falls in a word (a bug once missed the upper four).
    texts = ["a" * k + special + "b" * (17 - k) for k in range(18)]
    message = Rich(repeated_string=texts, map_string_string={t: t for t in texts})
    text = _native.encode_text(*core_args(Rich, serialized(message), REGISTRY, {}))
    assert orjson.loads(text) == {"repeatedString": texts, "mapStringString": {t: t for t in texts}}
    assert contract(Rich, serialized(message))


def test_text_that_is_not_utf8_is_declined() -> None:
    # proto2 strings are not validated: wire bytes can hold anything, and the Python codec
    # (through encode's decline) reports it
    for data in (b"\x72\x02\xc3\x28", b"\x72\x03\xed\xa0\x80", b"\x72\x02\xc0\xaf"):
        args = core_args(Rich, data, REGISTRY, {})
        assert _native.encode_text(*args) is NotImplemented
        assert _native.encode(*args) is NotImplemented
    for key in (b"\xff", b"\xf4\x90\x80\x80"):  # Struct keys
        entry = b"\x0a" + bytes([len(key)]) + key + b"\x12\x00"
        assert not contract(Rich, b"\xf2\x07" + bytes([len(entry) + 2, 0x0A, len(entry)]) + entry)


# --- wire bytes no serializer writes -------------------------------------------------------


@pytest.mark.parametrize("payload", WIRE_PAYLOADS, ids=lambda p: p.hex() or "empty")
@pytest.mark.parametrize("options", OPTIONS, ids=str)
def test_odd_payload_bytes_keep_the_contract(payload: bytes, options: dict[str, bool]) -> None:
    any_message = PoolAny(type_url="type.googleapis.com/richtest.v1.Payload", value=payload)
    contract(PoolAny, serialized(any_message), options=options)
    contract(Payload, payload, options=options)


@st.composite
def mutated_wire(draw: st.DrawFn) -> tuple[type[Message], bytes]:
    message = draw(test_messages)
    data = bytearray(serialized(message))
    for _ in range(draw(st.integers(1, 3))):
        how = draw(st.integers(0, 3))
        at = draw(st.integers(0, len(data)))
        if how == 0 and at < len(data):
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif how == 1:
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif how == 2:
            del data[at : at + draw(st.integers(1, 4))]
        else:
            data = data[:at]
    if draw(st.booleans()):  # inside an Any, as an Any payload the core parses itself
        url = f"type.googleapis.com/{message.DESCRIPTOR.full_name}"
        return PoolAny, serialized(PoolAny(type_url=url, value=bytes(data)))
    return type(message), bytes(data)


@settings(CHECKED, max_examples=400)
@given(mutated_wire(), st.sampled_from(OPTIONS))
def test_mutated_wire_keeps_the_contract(case: tuple, options: dict[str, bool]) -> None:
    cls, data = case
    note(data.hex())
    event("written" if contract(cls, data, options=options) else "declined")


SERIALIZER_NEVER_WRITES = [
    b"\x08\x01\x08\x02",  # a singular field twice
    b"\x10\x02\x08\x01",  # out of number order
    b"\x08\x00",  # a default for a field without presence
    b"\xe2\x03\x01a\xe8\x03\x01",  # two members of one oneof
    b"\x82\x08\x05\x11" + b"\x00" * 4,  # a Value with its number cut short
]


@pytest.mark.parametrize("data", SERIALIZER_NEVER_WRITES, ids=bytes.hex)
def test_what_serializers_never_write_is_declined_or_right(data: bytes) -> None:
    contract(Rich, data)


# --- the public API ------------------------------------------------------------------------


def test_the_benchmark_corpus_is_written_in_c() -> None:
    ops = make_corpus(40, 2)
    for options in OPTIONS:
        native_stats(reset=True)
        for op in ops:
            assert contract(Operation, serialized(op), default_registry, options)
            assert to_json(op, **options) == orjson.dumps(to_dict(op, **options)).decode()
        stats = native_stats()
        assert stats["emit_text"] == 2 * len(ops) and stats["emit_text_declined"] == 0, stats


def test_codec_encode_text_falls_back_to_the_value() -> None:
    # a NaN in a Value has no JSON form: encode_text declines, the Python codec reports it
    message = Rich()
    message.wkt_value.number_value = float("nan")
    codec = Codec(REGISTRY)
    native_stats(reset=True)
    with pytest.raises(ConversionError, match="no JSON form"):
        codec.encode_text(message)
    assert native_stats()["emit_text_declined"] == 1
    message.wkt_value.number_value = 1.0
    assert codec.encode_text(message) == b'{"wktValue":1.0}'
    with native(False):
        assert codec.encode_text(message) == b'{"wktValue":1.0}'


def test_the_float32_bits_round_trip_through_the_text() -> None:
    for bits in (1, 0x00800000, 0x7F7FFFFF, 0x3DCCCCCD, 0x4B800001, 0xC0490FDB):
        (value,) = struct.unpack("<f", struct.pack("<I", bits))
        assert contract(Rich, serialized(Rich(single_float=value)))
