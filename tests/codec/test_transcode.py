"""Codec.transcode_text (JSON text to JSON text) against the path through the message.

With its native core the codec reads the text into wire bytes and writes JSON from those
bytes, never making the message. That must give exactly what reading the message and
writing it gives (``encode_text(decode_text(...))``), and what the pure-Python codec gives,
on valid text in every option set and on mutated text: the same bytes, or the same
ConversionError with the same path.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from google.protobuf import json_format
from google.protobuf.message import Message
from hypothesis import given, note, settings
from hypothesis import strategies as st
from test_codec_differential import POOL, PROPERTY, REGISTRY, mutated_inputs, test_messages
from test_native import native

from bench.corpus import make_corpus
from v1op_pb import ConversionError, Operation, to_json
from v1op_pb._codec import native_stats
from v1op_pb._codec.codec import PURE_PYTHON_VARIABLE, Codec
from v1op_pb._codec.plan import _native

pytestmark = [
    pytest.mark.skipif(_native is None, reason="the native core is not built"),
    pytest.mark.skipif(
        os.environ.get(PURE_PYTHON_VARIABLE, "") not in ("", "0"),
        reason="pure-Python mode: the codec tests run without the native core",
    ),
]

OPTIONS: list[dict[str, bool]] = [
    {},
    {"emit_unpopulated": True},
    {"omit_output_only": True},
    {"ignore_unknown_fields": True, "emit_unpopulated": True},
]


def outcome(convert: Any) -> tuple[str, Any]:
    try:
        return ("text", convert())
    except ConversionError as e:
        return ("error", (str(e), tuple(e.path)))


def three_ways(codec: Codec, text: str | bytes, cls: type[Message]) -> list[tuple[str, Any]]:
    """Transcoded natively, through the message natively, and in pure Python."""
    with native(True):
        direct = outcome(lambda: codec.transcode_text(text, cls))
        through = outcome(lambda: codec.encode_text(codec.decode_text(text, cls)))
    with native(False):
        pure = outcome(lambda: codec.transcode_text(text, cls))
    return [direct, through, pure]


def assert_native_without_declines(stats: dict[str, int]) -> None:
    assert stats["parse_text"] >= 1 and stats["emit_text"] >= 1, stats
    assert stats["parse_text_declined"] == 0 and stats["emit_text_declined"] == 0, stats
    assert stats["wire_refused"] == 0, stats


@PROPERTY
@given(test_messages, st.sampled_from(OPTIONS), st.booleans())
def test_valid_text_transcodes_as_through_the_message(
    message: Message, options: dict[str, bool], as_bytes: bool
) -> None:
    text = to_json(message, registry=REGISTRY)
    data: str | bytes = text.encode() if as_bytes else text
    codec = Codec(REGISTRY, **options)
    native_stats(reset=True)
    with native(True):
        direct = codec.transcode_text(data, type(message))
    assert_native_without_declines(native_stats(reset=True))
    direct_, through, pure = three_ways(codec, data, type(message))
    assert ("text", direct) == direct_ == through == pure


@PROPERTY
@given(test_messages, st.sampled_from(OPTIONS))
def test_json_format_text_transcodes_as_through_the_message(
    message: Message, options: dict[str, bool]
) -> None:
    # Another writer: proto field names, indented, its own map order.
    text = json_format.MessageToJson(
        message, preserving_proto_field_name=True, descriptor_pool=POOL
    )
    direct, through, pure = three_ways(Codec(REGISTRY, **options), text, type(message))
    assert direct == through == pure


@settings(PROPERTY, max_examples=300)
@given(mutated_inputs(), st.sampled_from(OPTIONS))
def test_mutated_text_gets_the_same_answer_or_error(
    case: tuple[type[Message], str, str, Any], options: dict[str, bool]
) -> None:
    cls, text, how, _ = case
    note(how)
    direct, through, pure = three_ways(Codec(REGISTRY, **options), text, cls)
    assert direct == through == pure


@pytest.mark.parametrize("options", OPTIONS)
def test_the_benchmark_corpus_transcodes_natively_as_through_the_message(
    options: dict[str, bool],
) -> None:
    codec = Codec(**options)
    for op in make_corpus(60, 11):
        text = to_json(op).encode()
        native_stats(reset=True)
        with native(True):
            direct = codec.transcode_text(text, Operation)
        assert_native_without_declines(native_stats(reset=True))
        assert three_ways(codec, text, Operation) == [("text", direct)] * 3
