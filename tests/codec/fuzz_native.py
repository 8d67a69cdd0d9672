"""Fuzz the native codec core against the Python codec (``make fuzz-native``; not in CI).

Each input is converted by both paths, in one process, and the two answers must be equal:
the same message (deterministic bytes) or JSON value, or the same ConversionError (text and
path). Five targets, chosen by the first byte: from_json of the rest as text, to_json of
the message from_binary reads from the rest, to_json of an Any packing the rest as the
payload of a type the registry knows (wire bytes no serializer writes), encode_text's
contract on the rest as wire bytes of the type (or of an Any packing them): where it writes
text, encode converts and orjson.dumps of its value is that text; and from_json of the rest
as bytes, with decode_text's contract checked: where it writes wire bytes, decode of
jsontext.loads(rest) writes the same. The message type is an Operation or the rich test
schema's Rich; seeds are the golden files (tests/golden).

    .venv/bin/python tests/codec/fuzz_native.py -max_total_time=300

Prints how often the core converted or declined, at every power of two of inputs run.
"""

from __future__ import annotations

import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import atheris

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent), str(HERE.parents[1] / "gen"), str(HERE.parents[1])]

with atheris.instrument_imports(include=["v1op_pb"]):
    import orjson

    from v1op_pb import ConversionError, Operation, from_binary, from_json, to_json
    from v1op_pb._codec import native_stats, set_native
    from v1op_pb._codec.codec import Codec
    from v1op_pb._codec.plan import TABLES_BY_CLASS, _native, table_for
    from v1op_pb._registry import default_registry

from test_codec_differential import REGISTRY, PoolAny, Rich  # noqa: E402
from test_parse_text import oracle  # noqa: E402

TYPES: list[tuple[type[Any], Any]] = [(Operation, None), (Rich, REGISTRY)]
PAYLOAD_URLS = [
    "type.googleapis.com/richtest.v1.Payload",
    "type.googleapis.com/richtest.v1.Rich",
    "type.googleapis.com/google.protobuf.Struct",
    "type.googleapis.com/google.protobuf.Value",
    "type.googleapis.com/google.protobuf.Timestamp",
    "type.googleapis.com/google.protobuf.Any",
]
SEEN: Counter[str] = Counter()


def outcome(convert: Any) -> tuple[str, Any]:
    try:
        result = convert()
    except ConversionError as e:
        return ("error", (str(e), tuple(e.path)))
    if isinstance(result, str):
        return ("text", result)
    return ("message", result.SerializePartialToString(deterministic=True))


def compare(convert: Any, what: str) -> None:
    native_stats(reset=True)
    set_native(True)
    ours = outcome(convert)
    stats = native_stats(reset=True)
    set_native(False)
    theirs = outcome(convert)
    set_native(True)
    assert stats["wire_refused"] == 0, stats
    declined = stats["parse_declined"] + stats["emit_declined"] + stats["parse_text_declined"]
    SEEN[f"{what}: {ours[0]}, {'declined' if declined else 'native'}"] += 1
    if ours != theirs:
        raise AssertionError(f"{what}: native {ours!r} != python {theirs!r}")


def test_one_input(data: bytes) -> None:
    if len(data) < 2:
        return
    SEEN["inputs"] += 1
    if SEEN["inputs"] & (SEEN["inputs"] - 1) == 0 and SEEN["inputs"] >= 4096:
        _report()  # libFuzzer ends the process without running atexit handlers
    target, which, rest = data[0] % 5, data[1], data[2:]
    cls, registry = TYPES[which % len(TYPES)]
    if target == 0:
        try:
            text = rest.decode("utf-8")
        except UnicodeDecodeError:
            return
        compare(lambda: from_json(text, message_type=cls, registry=registry), "from_json")
    elif target == 1:
        try:
            message = from_binary(rest, message_type=cls)
        except ConversionError:
            return
        compare(lambda: to_json(message, registry=registry), "from_binary+to_json")
    elif target == 2:
        url = PAYLOAD_URLS[which % len(PAYLOAD_URLS)]
        message = PoolAny(type_url=url, value=rest)
        compare(lambda: to_json(message, registry=REGISTRY), "to_json of an Any")
    elif target == 4:
        # decode_text on raw bytes (UTF-8 or not): its answer is decode's of jsontext.loads
        # (or it declines), and from_json's answer is the Python codec's
        SEEN[f"decode_text: {oracle(cls, rest, registry=registry or default_registry)}"] += 1
        compare(lambda: from_json(rest, message_type=cls, registry=registry), "from_json bytes")
    else:
        if which & 4:
            url = PAYLOAD_URLS[which % len(PAYLOAD_URLS)]
            cls, registry = PoolAny, REGISTRY
            rest = PoolAny(type_url=url, value=rest).SerializeToString()
        encode_text_contract(cls, rest, registry or default_registry, which)


def encode_text_contract(cls: type[Any], data: bytes, registry: Any, which: int) -> None:
    codec = Codec(registry, emit_unpopulated=bool(which & 8), omit_output_only=bool(which & 16))
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


def _seeds() -> str:
    golden = HERE.parent / "golden"
    corpus = Path(tempfile.mkdtemp(prefix="v1op-fuzz-native-corpus-"))
    count = 0
    for path in sorted(golden.glob("*/*")):
        data = path.read_bytes()
        if path.suffix == ".json":
            heads = [b"\x00\x00", b"\x00\x01", b"\x04\x00", b"\x04\x01"]
        elif path.suffix == ".binpb":
            heads = [b"\x01\x00", b"\x02\x00", b"\x03\x00", b"\x03\x18"]
        else:
            continue
        for head in heads:
            (corpus / f"{count:04d}").write_bytes(head + data)
            count += 1
    return str(corpus)


def _report() -> None:
    print("fuzz-native:", dict(sorted(SEEN.items())), file=sys.stderr)


if __name__ == "__main__":
    atheris.Setup([*sys.argv, _seeds()], test_one_input)
    atheris.Fuzz()
