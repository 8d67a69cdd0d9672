"""The native core against the Python codec, one input at a time: what ``make fuzz-native``
runs (tests/codec/fuzz_native.py) and what test_native_regressions.py replays from
fuzz/regressions/native/.

An input is bytes: its first byte picks the route, its second the message type (its low two
bits: Operation, the rich test schema's Rich, Struct or Value) and the options, the rest is
the JSON text, the wire bytes or an Any's payload. Each route converts with the core on and
off, and the two answers must be equal: the same message (deterministic bytes), JSON text
or value, or the same ConversionError (text and path). Where the core has a contract of its
own, it is checked too: decode_text writes what decode writes for jsontext.loads of the
text, or declines; encode_text writes orjson.dumps of what encode makes, or declines; a
conversion asks the core once (after a decline the Python codec runs). Without the core
(pure-Python mode), only the Python codec runs, and any answer but a value or a
ConversionError is a finding.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import orjson
from google.protobuf import struct_pb2
from google.protobuf.message import Message
from test_codec_differential import REGISTRY, PoolAny, Rich
from test_parse_text import oracle

from v1op_pb import (
    ConversionError,
    Operation,
    from_binary,
    from_dict,
    from_json,
    native_stats,
    to_dict,
    to_json,
)
from v1op_pb._codec import native_enabled, set_native
from v1op_pb._codec.codec import Codec
from v1op_pb._codec.plan import TABLES_BY_CLASS, _native, table_for
from v1op_pb._registry import default_registry

ROUTES = (
    "from_json of text as str",  # decoded with surrogatepass: lone and split surrogates too
    "from_json of text as bytes",  # and decode_text's contract
    "from_dict of json.loads(text)",
    "to_json and to_dict of from_binary(wire)",
    "to_json and to_dict of an Any packing the bytes",
    "encode_text's contract on wire bytes",
    "NDJSON line to line (transcode_text)",
)
TYPES: list[tuple[type[Any], Any]] = [
    (Operation, default_registry),
    (Rich, REGISTRY),
    (struct_pb2.Struct, default_registry),
    (struct_pb2.Value, default_registry),
]
PAYLOAD_URLS = [
    "type.googleapis.com/richtest.v1.Payload",
    "type.googleapis.com/richtest.v1.Rich",
    "type.googleapis.com/google.protobuf.Struct",
    "type.googleapis.com/google.protobuf.Value",
    "type.googleapis.com/google.protobuf.Timestamp",
    "type.googleapis.com/google.protobuf.Any",
]
SEEN: Counter[str] = Counter()


def outcome(convert: Callable[[], Any]) -> tuple[str, Any]:
    try:
        result = convert()
    except ConversionError as e:
        return ("error", (str(e), tuple(e.path)))
    if isinstance(result, Message):
        return ("message", result.SerializePartialToString(deterministic=True))
    if isinstance(result, bytes):
        result = result.decode()
    return ("value", json.dumps(result, ensure_ascii=False))  # to_json's text too, quoted


def compare(convert: Callable[[], Any], route: str) -> None:
    """The same answer with the core and without; the core asked once per conversion."""
    if _native is None or not native_enabled():
        SEEN[f"{route}: {outcome(convert)[0]}"] += 1
        return
    native_stats(reset=True)
    ours = outcome(convert)
    stats = native_stats(reset=True)
    set_native(False)
    try:
        theirs = outcome(convert)
    finally:
        set_native(True)
    assert stats["wire_refused"] == 0, stats
    parses = stats["parse"] + stats["parse_declined"] + stats["parse_text_declined"]
    assert parses <= 1, f"{route}: the core was asked {parses} times to read one input"
    declined = stats["parse_declined"] + stats["parse_text_declined"] + stats["emit_declined"]
    declined += stats["emit_text_declined"]
    SEEN[f"{route}: {ours[0]}, {'declined' if declined else 'native'}"] += 1
    if ours != theirs:
        raise AssertionError(f"{route}: native {ours!r} != python {theirs!r}")


def check(data: bytes) -> None:
    """Run one input through its route (see the module docstring)."""
    if len(data) < 2:
        return
    SEEN["inputs"] += 1
    route, which, rest = data[0] % len(ROUTES), data[1], data[2:]
    cls, registry = TYPES[which & 3]
    options = {"emit_unpopulated": bool(which & 8), "omit_output_only": bool(which & 16)}
    ignore = bool(which & 32)
    name = ROUTES[route]
    if route in (0, 2):
        text = rest.decode("utf-8", "surrogatepass") if _utf8(rest, "surrogatepass") else None
        if text is None:
            return
        if route == 0:
            compare(
                lambda: from_json(
                    text, message_type=cls, registry=registry, ignore_unknown_fields=ignore
                ),
                name,
            )
            return
        try:
            value = json.loads(text)
        except ValueError:
            return
        compare(
            lambda: from_dict(
                value, message_type=cls, registry=registry, ignore_unknown_fields=ignore
            ),
            name,
        )
    elif route == 1:
        if _native is not None and native_enabled():
            SEEN[f"decode_text: {oracle(cls, rest, ignore, registry)}"] += 1
        compare(
            lambda: from_json(
                rest, message_type=cls, registry=registry, ignore_unknown_fields=ignore
            ),
            name,
        )
    elif route in (3, 4):
        if route == 4:
            cls, registry = PoolAny, REGISTRY
            rest = PoolAny(type_url=PAYLOAD_URLS[which % len(PAYLOAD_URLS)], value=rest)
            rest = rest.SerializeToString()
        try:
            message = from_binary(rest, message_type=cls)
        except ConversionError:
            return
        compare(lambda: to_json(message, registry=registry, **options), name)
        compare(lambda: to_dict(message, registry=registry, **options), name)
    elif route == 5:
        encode_text_contract(cls, rest, registry, options)
    else:
        codec = Codec(registry, ignore_unknown_fields=ignore, **options)
        compare(lambda: codec.transcode_text(rest, cls), name)


def _utf8(data: bytes, errors: str) -> bool:
    try:
        data.decode("utf-8", errors)
    except UnicodeDecodeError:
        return False
    return True


def encode_text_contract(cls: type[Any], data: bytes, registry: Any, options: dict) -> None:
    if _native is None or not native_enabled():
        return
    codec = Codec(registry, **options)
    args = (
        table_for(cls.DESCRIPTOR),
        data,
        codec.omit_output_only,
        codec.emit_unpopulated,
        codec._table_of_url,
        registry.by_url,
        TABLES_BY_CLASS,
    )
    text = _native.encode_text(*args)
    value = _native.encode(*args)
    SEEN[f"encode_text: {'declined' if text is NotImplemented else 'text'}"] += 1
    if text is not NotImplemented and (value is NotImplemented or orjson.dumps(value) != text):
        raise AssertionError(f"encode_text wrote {text!r}, encode gave {value!r}")
