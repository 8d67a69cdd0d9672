"""The native core of the codec against the Python codec, on the rich test schema.

Both paths run in one process on the same input (``set_native`` switches between them). The
native core must give exactly the Python codec's answer: the same JSON values (key order,
``1`` vs ``1.0`` and ``-0.0`` included), the same messages, byte for byte in deterministic
form, so that the bytes an Any packs are the same; and, on input it does not accept, it must
decline, so that the Python codec's ConversionError (with its path) is the only error. These
properties hold whatever json_format does; test_codec_differential compares both with it.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from google.protobuf import duration_pb2, struct_pb2, timestamp_pb2
from google.protobuf.message import Message
from hypothesis import event, given, note, settings
from hypothesis import strategies as st
from test_codec_differential import (
    PROPERTY,
    REGISTRY,
    Payload,
    PoolAny,
    Rich,
    mutated_inputs,
    test_messages,
)

from bench.corpus import make_corpus
from v1op_pb import ConversionError, TypeRegistry, from_dict, from_json, pack, to_dict, to_json
from v1op_pb._codec import native_enabled, native_stats, set_native
from v1op_pb._codec.codec import PURE_PYTHON_VARIABLE, Codec
from v1op_pb._codec.descriptors import is_repeated
from v1op_pb._codec.plan import TABLES, TABLES_BY_CLASS, _native, packed_by_runtime

pytestmark = [
    pytest.mark.skipif(_native is None, reason="the native core is not built"),
    pytest.mark.skipif(
        os.environ.get(PURE_PYTHON_VARIABLE, "") not in ("", "0"),
        reason="pure-Python mode: the codec tests run without the native core",
    ),
]


@contextmanager
def native(enabled: bool) -> Iterator[None]:
    previous = set_native(enabled)
    try:
        yield
    finally:
        set_native(previous)


Outcome = tuple[str, Any]


def outcome(convert: Callable[[], Any]) -> Outcome:
    """What a conversion gives: a value (messages as deterministic bytes), or the error."""
    try:
        result = convert()
    except ConversionError as e:
        return ("error", (str(e), tuple(e.path)))
    if isinstance(result, Message):
        return ("message", (type(result).DESCRIPTOR.full_name, deterministic(result)))
    return ("value", json.dumps(result, ensure_ascii=False))


def deterministic(message: Message) -> bytes:
    return message.SerializePartialToString(deterministic=True)


def both(convert: Callable[[], Any]) -> tuple[Outcome, Outcome, dict[str, int]]:
    """(native outcome, Python outcome, what the native core did)."""
    native_stats(reset=True)
    with native(True):
        ours = outcome(convert)
    stats = native_stats(reset=True)
    with native(False):
        theirs = outcome(convert)
    return ours, theirs, stats


OPTIONS = [{}, {"emit_unpopulated": True}, {"omit_output_only": True}]


def test_native_is_on_by_default() -> None:
    assert native_enabled()
    # make sanitize runs these tests in a copy of the tree with the core built with ASan and
    # UBSan: that build, not the development one, must be the one under test.
    expected = os.environ.get("V1OP_PB_EXPECT_NATIVE_UNDER")
    if expected:
        assert _native is not None and _native.__file__.startswith(expected), _native


# --- valid messages: the same JSON out, the same messages in, no declines ------------------


@PROPERTY
@given(test_messages, st.sampled_from(OPTIONS))
def test_output_is_the_python_codecs(message: Message, options: dict[str, bool]) -> None:
    ours, theirs, stats = both(lambda: to_dict(message, registry=REGISTRY, **options))
    assert ours == theirs
    assert stats["emit"] == 1 and stats["emit_declined"] == 0, stats
    ours, theirs, _ = both(lambda: to_json(message, registry=REGISTRY, **options))
    assert ours == theirs


@PROPERTY
@given(test_messages, st.sampled_from(OPTIONS[:2]))
def test_input_reads_as_the_python_codec_reads_it(
    message: Message, options: dict[str, bool]
) -> None:
    with native(False):
        text = to_json(message, registry=REGISTRY, **options)
    cls = type(message)
    ours, theirs, stats = both(lambda: from_json(text, message_type=cls, registry=REGISTRY))
    # Equal deterministic bytes: Any payloads (which deterministic serialization copies as
    # they are) were packed to the same bytes.
    assert ours == theirs
    assert ours[0] == "message"
    assert stats["parse"] == 1 and stats["parse_declined"] == 0, stats
    assert stats["wire_refused"] == 0


# --- any input: the same answer, or the same error -----------------------------------------


@settings(PROPERTY, max_examples=400)
@given(mutated_inputs())
def test_mutated_input_gets_the_python_codecs_answer(case: tuple) -> None:
    cls, text, how, _ = case
    note(how)
    note(text)
    ours, theirs, stats = both(lambda: from_json(text, message_type=cls, registry=REGISTRY))
    assert ours == theirs
    assert stats["wire_refused"] == 0
    event(f"{ours[0]}, native {'declined' if stats['parse_declined'] else 'converted'}")
    if stats["parse"]:  # accepted by the core: the Python codec accepted it too
        assert theirs[0] == "message"


# from_dict takes Python values json.loads never makes; the core declines all of them.
ODD_VALUES = [
    {"singleInt32": True},
    {"singleInt32": 1.5},
    {"singleInt32": 2.0},
    {"singleInt64": "12"},
    {"singleInt64": "-0"},
    {"singleInt64": "007"},
    {"singleUint64": -1},
    {"singleUint64": 2**64},
    {"singleUint64": "18446744073709551615"},
    {"singleDouble": float("nan")},
    {"singleDouble": float("inf")},
    {"singleFloat": 3.5e38},
    {"singleFloat": "3.4028235e38"},
    {"singleDouble": 10**400},
    {"singleString": "a\ud800"},
    {"singleBytes": "QQ="},
    {"singleBytes": "QR=="},
    {"singleBytes": "="},
    {"singleBytes": "Q"},
    {"singleBytes": "-_-_"},
    {"repeatedInt32": (1, 2)},
    {"repeatedInt32": [1, None]},
    {"mapInt32String": {"01": "a", "1": "b"}},
    {"mapInt32String": {"-0": "a"}},
    {"mapBoolString": {"true": "a", "false": "b"}},
    {"shade": 2.0},
    {"shade": "SHADE_VERDE"},
    {"shade": "NOPE"},
    {"wktValue": float("nan")},
    {"wktValue": (1, 2)},
    {"wktStruct": {"a": {1: 2}}},
    {None: 1},
    {1: 1},
    {"wktTimestamp": "2024-02-30T00:00:00Z"},
    {"wktTimestamp": "2024-02-29T23:59:60Z"},
    {"wktTimestamp": "0000-01-01T00:00:00Z"},
    {"wktTimestamp": "9999-12-31T23:59:59.999999999-00:01"},
    {"wktDuration": "-315576000000.999999999s"},
    {"wktDuration": "315576000001s"},
    {"wktFieldMask": "a,bC,,d"},
    {"wktFieldMask": "a_b"},
    {"choiceText": "a", "choiceNumber": 1},
    {"choiceText": "a", "choiceValue": None},
    {"choiceValue": None},
    {"choiceNull": None},
    {"wktAny": {}},
    {"wktAny": {"@type": "type.googleapis.com/richtest.v1.Nope"}},
    {"wktAny": {"@type": "type.googleapis.com/google.protobuf.Duration", "value": "1s"}},
    {"wktAny": {"@type": "type.googleapis.com/google.protobuf.Duration"}},
    {"wktAny": {"@type": "type.googleapis.com/richtest.v1.Payload", "label": "x"}},
    {"wktAny": {"@type": "type.googleapis.com/richtest.v1.Payload", "@type2": 1}},
]


@pytest.mark.parametrize("value", ODD_VALUES, ids=repr)
@pytest.mark.parametrize("ignore_unknown_fields", [False, True])
def test_python_values_get_the_python_codecs_answer(
    value: dict[Any, Any], ignore_unknown_fields: bool
) -> None:
    ours, theirs, stats = both(
        lambda: from_dict(
            value,
            message_type=Rich,
            registry=REGISTRY,
            ignore_unknown_fields=ignore_unknown_fields,
        )
    )
    assert ours == theirs
    assert stats["wire_refused"] == 0


# --- wire bytes no serializer writes, inside an Any: read as the Python codec reads them ----

WIRE_PAYLOADS = [
    b"",
    b"\x0a\x01a\x0a\x01b",  # label twice: the last wins
    b"\x10\x05\x0a\x01a",  # out of number order
    b"\x10\x00",  # a default written out
    b"\x1a\x00",  # an empty packed array
    b"\x19" + b"\x00" * 8,  # an unpacked double
    b"\x42\x02\x0a\x00\x42\x02\x12\x00",  # inner in two parts: merged
    b"\x2a\x04\x0a\x01k\x12\x00" * 2,  # one map key twice
    b"\x2a\x02\x12\x00",  # a map entry without its key
    b"\x0a\x02\xc3\x28",  # not UTF-8
    b"\x0a\x05a",  # truncated
    b"\xf8\x07\x01",  # an unknown field
    b"\x20\x80\x80\x80\x80\x10",  # an enum number beyond 32 bits
    b"\x32\x04\x08\x80\x80\x04",  # Timestamp out of range
]


@pytest.mark.parametrize("payload", WIRE_PAYLOADS, ids=lambda p: p.hex() or "empty")
@pytest.mark.parametrize("options", OPTIONS, ids=str)
def test_odd_payload_bytes_get_the_python_codecs_answer(
    payload: bytes, options: dict[str, bool]
) -> None:
    any_message = PoolAny(type_url="type.googleapis.com/richtest.v1.Payload", value=payload)
    ours, theirs, _ = both(lambda: to_dict(any_message, registry=REGISTRY, **options))
    assert ours == theirs


@pytest.mark.parametrize(
    "payload",
    [b"\x08\x00", b"\x08\x03", b"\x08\x03\x1a\x01a", b"\x1a\x01a\x08\x03", b"\x11" + b"\xff" * 8],
    ids=["null", "null 3", "null 3 then text", "text then null 3", "NaN"],
)
def test_values_with_no_json_form_get_the_python_codecs_answer(payload: bytes) -> None:
    any_message = PoolAny(type_url="type.googleapis.com/google.protobuf.Value", value=payload)
    ours, theirs, _ = both(lambda: to_dict(any_message, registry=REGISTRY))
    assert ours == theirs


# --- Any through the registry in use -------------------------------------------------------


def test_types_registered_at_run_time_are_found() -> None:
    registry = TypeRegistry(use_default_pool=False)
    value = {"@type": "type.googleapis.com/google.protobuf.Duration", "value": "1.5s"}
    ours, theirs, stats = both(lambda: from_dict(value, message_type=PoolAny, registry=registry))
    assert ours == theirs and ours[0] == "error" and stats["parse_declined"] == 1
    registry.register(duration_pb2.Duration)
    ours, theirs, stats = both(lambda: from_dict(value, message_type=PoolAny, registry=registry))
    assert ours == theirs and ours[0] == "message" and stats["parse"] == 1
    message = PoolAny()
    message.Pack(duration_pb2.Duration(seconds=1, nanos=500_000_000))
    ours, theirs, stats = both(lambda: to_dict(message, registry=registry))
    assert ours == theirs == ("value", json.dumps({**value, "value": "1.500s"}))
    assert stats["emit"] == 1


def test_custom_registries_are_kept_apart() -> None:
    message = pack(Payload(label="x"))
    known = TypeRegistry(use_default_pool=False).register(Payload)
    unknown = TypeRegistry(use_default_pool=False)
    ours, theirs, _ = both(lambda: to_dict(message, registry=known))
    assert ours == theirs and ours[0] == "value"
    ours, theirs, _ = both(lambda: to_dict(message, registry=unknown))
    assert ours == theirs and ours[0] == "error"


# --- threads, and what a long run leaves behind ---------------------------------------------


def _workload() -> list[Message]:
    stamp = timestamp_pb2.Timestamp(seconds=1_789_948_800, nanos=5000)
    details = struct_pb2.Struct()
    details.update({"a": [1, "b", None, {"c": True}], "d": 2.5})
    messages = []
    for i in range(30):
        message = Rich(
            single_string=f"item {i}",
            single_int64=-i,
            repeated_double=[i / 3, -0.0],
            map_string_string={"x": "1", "y": "2", "z": str(i)},
        )
        # The rich schema's well-known types come from its own pool: copied in as bytes.
        message.wkt_timestamp.MergeFromString(stamp.SerializeToString())
        message.wkt_struct.MergeFromString(details.SerializeToString())
        payload = Payload(label="p", count=i, tags={"k": "v", "l": "w"})
        message.wkt_any.MergeFromString(pack(payload).SerializeToString())
        messages.append(message)
    return messages


def test_conversions_in_several_threads_at_once() -> None:
    messages = _workload()
    with native(False):
        expected = [to_json(m, registry=REGISTRY) for m in messages]
        expected_again = [to_dict(m, registry=REGISTRY) for m in messages]
    native_stats(reset=True)
    results: list[list[Any]] = []
    failures: list[BaseException] = []
    start = threading.Barrier(4)

    def convert() -> None:
        try:
            start.wait()
            out = []
            for _ in range(20):
                for message in messages:
                    text = to_json(message, registry=REGISTRY)
                    again = from_json(text, message_type=Rich, registry=REGISTRY)
                    out.append((text, to_dict(again, registry=REGISTRY)))
            results.append(out)
        except BaseException as e:  # reported below, in the test's thread
            failures.append(e)

    threads = [threading.Thread(target=convert) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    assert len(results) == 4
    for out in results:
        assert out == list(zip(expected, expected_again, strict=True)) * 20
    stats = native_stats()
    assert stats["parse_declined"] == stats["emit_declined"] == 0
    assert stats["parse"] == 4 * 20 * 30
    # to_json's text is written by encode_text (emit_text.c), in every thread
    assert stats["emit_text"] == 4 * 20 * 30 and stats["emit_text_declined"] == 0
    # from_json read them straight from the text (decode_text)
    assert stats["parse_text"] == 4 * 20 * 30 and stats["parse_text_declined"] == 0


def test_many_conversions_leave_nothing_behind() -> None:
    messages = _workload()
    texts = [to_json(m, registry=REGISTRY) for m in messages]
    invalid = [
        '{"singleInt32": "x"}',
        '{"wktAny": {"@type": "type.googleapis.com/richtest.v1.Nope"}}',
        '{"wktTimestamp": "2024-13-01T00:00:00Z"}',
        '{"mapStringString": {"a": 1}}',
        '{"wktStruct": {"a": [1, {"b": "\\ud800"}]}}',
        # declined by decode_text part-way (a map, a Struct, an Any payload under way)
        '{"mapStringString": {"b": "1", "a": "2", "a": "3"}}',
        '{"wktStruct": {"b": [1, {"c": {}}], "b": 2}}',
        '{"wktAny": {"@type": "type.googleapis.com/richtest.v1.Payload", "tags": {"b": 1}}}',
        b'{"singleInt64": "1", "singleString": "\xff"}',
    ]
    # read by decode_text with fields, map entries and Struct fields put in order
    texts += [
        b'{"wktStruct": {"b": 1, "a": [true]}, "mapStringString": {"z": "1", "a": "2"}, '
        b'"singleString": "\\u00e9", "repeatedDouble": [1.5, -0]}'
    ] * 5
    bad_payload = PoolAny(type_url="type.googleapis.com/richtest.v1.Payload", value=b"\xf8\x07")

    def run() -> None:
        for text in texts:
            to_json(from_json(text, message_type=Rich, registry=REGISTRY), registry=REGISTRY)
        for text in invalid:
            with pytest.raises(ConversionError):
                from_json(text, message_type=Rich, registry=REGISTRY)
        with pytest.raises(ConversionError):
            to_dict(bad_payload, registry=REGISTRY)
        with pytest.raises(ConversionError):  # encode_text declines, then the value path
            to_json(bad_payload, registry=REGISTRY)

    for _ in range(20):  # warm the caches (tables, compiled Python, type URLs)
        run()
    gc.collect()
    tracemalloc.start()
    try:
        objects = len(gc.get_objects())
        # references to objects that live anyway (the tables, the classes) leak unseen by
        # the counts above: their reference counts must not grow either
        held = [*TABLES.values(), *TABLES_BY_CLASS.keys(), *TABLES_BY_CLASS.values()]
        counts = [sys.getrefcount(x) for x in held]
        before, _ = tracemalloc.get_traced_memory()
        for _ in range(300):
            run()
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
        grown = len(gc.get_objects()) - objects
        counts_after = [sys.getrefcount(x) for x in held]
    finally:
        tracemalloc.stop()
    # 300 rounds of 30 messages both ways (to_json through encode_text) and 7 refusals: a
    # leaked reference per conversion would keep ~10,000 objects (and far more bytes) alive.
    assert grown < 200, grown
    assert counts_after == counts
    assert after - before < 64 * 1024, after - before


# --- the check of orjson's reading (jsontext._may_differ), in C ----------------------------


def test_no_declines_on_the_benchmark_corpus() -> None:
    ops = make_corpus(60, 0)
    native_stats(reset=True)
    for op in ops:
        assert from_json(to_json(op)) == op
        from_dict(to_dict(op, emit_unpopulated=True))
        to_dict(op, omit_output_only=True)
        to_json(op, emit_unpopulated=True, omit_output_only=True)
    stats = native_stats()
    assert stats["parse"] == 2 * len(ops) and stats["emit"] == 2 * len(ops), stats
    assert stats["emit_text"] == 2 * len(ops), stats  # to_json writes its text in C
    assert stats["parse_declined"] == stats["emit_declined"] == stats["wire_refused"] == 0
    assert stats["emit_text_declined"] == 0


@pytest.mark.parametrize("options", OPTIONS, ids=str)
def test_the_benchmark_corpus_converts_as_in_python(options: dict[str, bool]) -> None:
    # Operation has output-only fields (the rich schema has none) and Anys with maps.
    for op in make_corpus(30, 1):
        ours, theirs, _ = both(lambda op=op: to_json(op, **options))
        assert ours == theirs
        text = ours[1]
        ours, theirs, _ = both(lambda text=text: from_json(text))
        assert ours == theirs


def test_packedness_asked_of_the_runtime_is_the_descriptors() -> None:
    # The runtimes below protobuf 7 have no FieldDescriptor.is_packed: plan asks the runtime
    # (and there, the byte-for-byte comparisons of packed Anys above check it).
    if not hasattr(Rich.DESCRIPTOR.fields[0], "is_packed"):
        pytest.skip("this protobuf has no FieldDescriptor.is_packed to compare with")
    fields = [
        f
        for f in Rich.DESCRIPTOR.fields
        if getattr(f, "is_packed", None) is not None
        and f.message_type is None
        and f.type not in (f.TYPE_STRING, f.TYPE_BYTES)
        and is_repeated(f)
    ]
    assert len(fields) == 15  # the 12 numeric kinds, bool, Shade and NullValue
    for field in fields:
        assert packed_by_runtime(field) == field.is_packed, field.name


DECLINED_BY_THE_CORE = [
    b'{"singleDouble":123456789012345678901}',  # an integer beyond 64 bits: read by Python
    b'{"singleInt32":NaN}',  # not JSON: the Python codec reports it
    b'{"singleString":"\\ud800"}',  # a lone surrogate: json.loads keeps it, orjson refuses it
]


@pytest.mark.parametrize("text", DECLINED_BY_THE_CORE)
def test_a_conversion_the_core_declines_asks_it_once(text: bytes) -> None:
    # transcode_text once read a declined text in C a second time (decode_text again), and
    # counted the decline twice; a decline now goes to the Python codec at once.
    codec = Codec(REGISTRY)
    convert: list[Callable[[], Any]] = [
        lambda: codec.transcode_text(text, Rich).decode(),
        lambda: from_json(text, message_type=Rich, registry=REGISTRY),
        lambda: from_json(text.decode(), message_type=Rich, registry=REGISTRY),
    ]
    for each in convert:
        native_stats(reset=True)
        ours, theirs, stats = both(each)
        assert ours == theirs
        assert stats["parse_text_declined"] == 1 and stats["parse_declined"] == 0, stats
        assert stats["parse"] == stats["parse_text"] == 0, stats


def test_an_emit_the_core_declines_asks_it_once() -> None:
    # A field the schema does not know: the text path declines, and the Python codec, not
    # the core's value path as well, reports it.
    message = Rich(single_int32=1)
    message.MergeFromString(b"\xf8\xff\x7f\x01")  # field 262143, a varint
    for write in (to_json, to_dict):
        ours, theirs, stats = both(lambda write=write: write(message, registry=REGISTRY))
        assert ours == theirs and ours[0] == "error"
        assert stats["emit_text_declined"] + stats["emit_declined"] == 1, stats
