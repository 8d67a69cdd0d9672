"""Binary protobuf and text format, and the unknown-field check before lossy output."""

from __future__ import annotations

import re
from pathlib import Path

import grpc_tools
import pytest
from factories import make_failed, make_running, make_succeeded
from google.protobuf import any_pb2, struct_pb2, text_format
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2
from grpc_tools import protoc
from v1op.example.v1 import evaluation_pb2

from v1op_pb import (
    ConversionError,
    Operation,
    TypeRegistry,
    from_binary,
    from_json,
    from_text,
    pack,
    to_binary,
    to_json,
    to_text,
)

PROTO_ROOT = Path(__file__).resolve().parent / "data"
WKT_INCLUDE = Path(grpc_tools.__file__).parent / "_proto"

FACTORIES = [make_running, make_succeeded, make_failed]
# Field 99, wire type varint, value 1: a field no message here defines.
UNKNOWN_FIELD = b"\x98\x06\x01"


def make_with_scores(keys: list[str]) -> Operation:
    """The same operation whatever the order of keys; only the insertion order differs."""
    op = make_succeeded()
    result = evaluation_pb2.EvaluationResult()
    for key in keys:
        result.scores[key] = len(key) / 4
    op.response.CopyFrom(pack(result))
    op.metadata.CopyFrom(pack(error_details_pb2.ErrorInfo(metadata={k: k for k in keys})))
    return op


def make_widget_registry(tmp_path: Path) -> TypeRegistry:
    descriptor_set = tmp_path / "widget.pb"
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{WKT_INCLUDE}",
        f"--descriptor_set_out={descriptor_set}",
    ]
    assert protoc.main([*args, "regtest/v1/widget.proto"]) == 0
    registry = TypeRegistry()
    registry.add_descriptor_set(descriptor_set)
    return registry


# --- binary ------------------------------------------------------------------------------------


@pytest.mark.parametrize("factory", FACTORIES)
def test_binary_round_trip(factory):
    op = factory()
    data = to_binary(op)
    assert isinstance(data, bytes)
    back = from_binary(data)
    assert isinstance(back, Operation)
    assert back == op
    assert to_binary(back) == data


def test_binary_is_deterministic():
    keys = [f"k{i}" for i in range(30)]
    forward, backward = make_with_scores(keys), make_with_scores(keys[::-1])
    assert forward == backward
    assert to_binary(forward) == to_binary(backward)


def test_binary_of_another_message_type():
    info = error_details_pb2.ErrorInfo(reason="R", metadata={"a": "b"})
    back = from_binary(to_binary(info), message_type=error_details_pb2.ErrorInfo)
    assert isinstance(back, error_details_pb2.ErrorInfo)
    assert back == info


def test_empty_binary_is_an_empty_operation():
    assert from_binary(b"") == Operation()


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xff\xff",  # a varint that never ends
        b"\x0a\x10name",  # a length beyond the end
        b"\x0f",  # wire type 7 does not exist
        to_binary(make_failed())[:-3],  # truncated
    ],
    ids=["varint", "length", "wire-type", "truncated"],
)
def test_invalid_binary_is_a_conversion_error(data):
    with pytest.raises(ConversionError, match=re.escape("not a valid binary v1op.v1.Operation")):
        from_binary(data)


def test_invalid_binary_keeps_the_cause():
    with pytest.raises(ConversionError) as caught:
        from_binary(b"\x0f")
    assert isinstance(caught.value.__cause__, DecodeError)


# --- text --------------------------------------------------------------------------------------


@pytest.mark.parametrize("factory", FACTORIES)
def test_text_round_trip(factory):
    # Equality of an Any is equality of its bytes, so this also needs from_text to pack the
    # expanded Anys deterministically, as pack() does.
    op = factory()
    text = to_text(op)
    assert from_text(text) == op
    assert from_text(text.encode("utf-8")) == op
    assert to_binary(from_text(text)) == to_binary(op)


def test_text_expands_any():
    text = to_text(make_failed())
    assert "[type.googleapis.com/v1op.example.v1.EvaluationProgress] {" in text
    assert "[type.googleapis.com/google.rpc.ErrorInfo] {" in text
    assert 'reason: "QUOTA_EXHAUSTED"' in text
    assert "type_url:" not in text


def test_text_keeps_unknown_any_types_as_bytes():
    op = Operation(response=any_pb2.Any(type_url="example.com/acme.v9.Secret", value=b"\x08\x01"))
    text = to_text(op)
    assert 'type_url: "example.com/acme.v9.Secret"' in text
    assert from_text(text) == op


def test_text_writes_utf8_unescaped():
    op = Operation(name="operations/grüße-✓")
    text = to_text(op)
    assert 'name: "operations/grüße-✓"' in text
    assert from_text(text.encode("utf-8")) == op


def test_text_of_another_message_type():
    info = error_details_pb2.ErrorInfo(reason="R")
    assert from_text(to_text(info), message_type=error_details_pb2.ErrorInfo) == info


def test_text_reads_expanded_any_written_by_hand():
    op = from_text(
        "done: true\nresponse {\n  [type.googleapis.com/google.rpc.ErrorInfo] { reason: 'R' }\n}\n"
    )
    assert op.response == pack(error_details_pb2.ErrorInfo(reason="R"))


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('name: "x"\n  nmae: "y"\n', "2:3"),
        ("done: maybe\n", "1:7"),
        ('name: "unterminated\n', "1:"),
        ('done: true\nerror { code: "eight" }\n', "2:"),
    ],
)
def test_invalid_text_is_a_conversion_error_with_line_and_column(text, where):
    with pytest.raises(ConversionError, match=re.escape(where)) as caught:
        from_text(text)
    assert isinstance(caught.value.__cause__, text_format.ParseError)


def test_text_with_an_unknown_expanded_any_type_is_a_conversion_error():
    with pytest.raises(ConversionError, match=re.escape("nowhere.v1.Missing")):
        from_text("response {\n  [type.googleapis.com/nowhere.v1.Missing] { a: 1 }\n}\n")


@pytest.mark.parametrize(
    ("data", "offset"), [(b'name: "\xff"', 7), (b"\xc3", 0), (b'name: "\xe2\x9c"', 7)]
)
def test_non_utf8_text_is_a_conversion_error(data, offset):
    with pytest.raises(
        ConversionError, match=re.escape(f"not UTF-8: invalid byte at offset {offset}")
    ):
        from_text(data)


def test_text_round_trip_with_a_descriptor_set(tmp_path):
    registry = make_widget_registry(tmp_path)
    widget = registry.resolve("type.googleapis.com/regtest.v1.Widget")(name="w", color=1)
    op = Operation(done=True, response=pack(widget))
    text = to_text(op, registry=registry)
    assert "[type.googleapis.com/regtest.v1.Widget] {" in text
    assert "color: COLOR_RED" in text
    assert from_text(text, registry=registry) == op


def test_text_with_a_descriptor_set_still_reads_every_type_the_registry_knows(tmp_path):
    # The registry resolves ErrorInfo and EvaluationProgress (default pool); loading a
    # descriptor set for another type must not make text format forget them.
    registry = make_widget_registry(tmp_path)
    op = make_failed()
    assert from_text(to_text(op), registry=registry) == op


def test_text_with_a_descriptor_set_still_expands_every_type_the_registry_knows(tmp_path):
    registry = make_widget_registry(tmp_path)
    text = to_text(make_failed(), registry=registry)
    assert "[type.googleapis.com/google.rpc.ErrorInfo] {" in text
    assert "[type.googleapis.com/v1op.example.v1.EvaluationProgress] {" in text


# --- unknown fields ----------------------------------------------------------------------------


def make_unknown_at_top() -> Operation:
    return from_binary(to_binary(make_failed()) + UNKNOWN_FIELD)


def make_unknown_in_error() -> Operation:
    op = make_failed()
    op.error.MergeFromString(UNKNOWN_FIELD)
    return op


def make_unknown_in_detail_any() -> Operation:
    op = make_failed()
    op.error.details[2].MergeFromString(UNKNOWN_FIELD)
    return op


def make_unknown_in_timestamp() -> Operation:
    op = make_failed()
    op.create_time.MergeFromString(UNKNOWN_FIELD)
    return op


UNKNOWN_CASES = [
    (make_unknown_at_top, []),
    (make_unknown_in_error, ["error"]),
    (make_unknown_in_detail_any, ["error", "details", 2]),
    (make_unknown_in_timestamp, ["createTime"]),
]


@pytest.mark.parametrize("factory", FACTORIES)
def test_clean_messages_have_text(factory):
    assert from_text(to_text(factory())) == factory()


def test_unknown_fields_in_map_values_are_found():
    value = struct_pb2.Struct()
    value.update({"ok": 1, "a b": 2})
    value.fields["a b"].MergeFromString(UNKNOWN_FIELD)
    with pytest.raises(ConversionError) as caught:
        to_text(value)
    assert caught.value.segments == ["fields", "a b"]


def test_unknown_fields_in_repeated_messages_are_found():
    request = error_details_pb2.BadRequest(field_violations=[{"field": "a"}, {"field": "b"}])
    request.field_violations[1].MergeFromString(UNKNOWN_FIELD)
    with pytest.raises(ConversionError) as caught:
        to_text(request)
    assert caught.value.path == "$.fieldViolations[1]"


@pytest.mark.parametrize(("factory", "path"), UNKNOWN_CASES)
@pytest.mark.parametrize("convert", [to_text, to_json])
def test_lossy_output_of_unknown_fields_is_a_conversion_error(factory, path, convert):
    # Text and JSON have no place for unknown fields; writing them would lose data silently.
    with pytest.raises(ConversionError) as caught:
        convert(factory())
    assert caught.value.segments == path


def test_unknown_fields_survive_binary():
    op = make_unknown_in_error()
    assert from_binary(to_binary(op)) == op
    assert UNKNOWN_FIELD in to_binary(op)


def make_unknown_in_packed_detail() -> Operation:
    op = make_failed()
    op.error.details[0].value += UNKNOWN_FIELD
    return op


@pytest.mark.parametrize("convert", [to_text, to_json])
def test_unknown_fields_inside_a_packed_message_are_a_conversion_error(convert):
    # The ErrorInfo inside the Any carries the unknown field. Text format expands the Any and
    # would print the ErrorInfo without it, so a text round trip would lose it.
    with pytest.raises(ConversionError) as caught:
        convert(make_unknown_in_packed_detail())
    assert caught.value.path == "$.error.details[0]"


def test_text_of_undecodable_any_is_a_conversion_error():
    # Every conversion raises ConversionError, as to_json does for the same message.
    op = Operation(
        response=any_pb2.Any(type_url="type.googleapis.com/google.rpc.ErrorInfo", value=b"\xff")
    )
    with pytest.raises(ConversionError, match=re.escape("google.rpc.ErrorInfo")):
        to_json(op)
    with pytest.raises(ConversionError, match=re.escape("google.rpc.ErrorInfo")):
        to_text(op)


# --- text format: the promises of JSON (issue 11) ---------------------------------------------

GOLDEN_VALID = Path(__file__).parent / "golden" / "valid"


def length_delimited(number: int, payload: bytes) -> bytes:
    """A length-delimited field in binary form, written by hand: deep nests that no
    message constructor builds (the runtime's own depth limit would refuse them)."""
    out = bytearray([number << 3 | 2])
    size = len(payload)
    while True:
        low, size = size & 0x7F, size >> 7
        out.append(low | (0x80 if size else 0))
        if not size:
            return bytes(out) + payload


def any_bytes(type_name: str, value: bytes) -> bytes:
    url = f"type.googleapis.com/{type_name}".encode()
    return length_delimited(1, url) + length_delimited(2, value)


def list_value_chain(levels: int) -> Operation:
    """metadata: a Value holding a list holding a list ... ``levels`` deep."""
    value = length_delimited(3, b"leaf")
    for _ in range(levels):
        value = length_delimited(6, length_delimited(1, value))
    return Operation.FromString(length_delimited(8, any_bytes("google.protobuf.Value", value)))


def any_chain(levels: int) -> Operation:
    """metadata: an Any holding an Any ... ``levels`` deep."""
    packed = any_bytes("google.protobuf.Value", length_delimited(3, b"x"))
    for _ in range(levels):
        packed = any_bytes("google.protobuf.Any", packed)
    return Operation.FromString(length_delimited(8, packed))


def converts(convert, *args) -> bool:
    try:
        convert(*args)
    except ConversionError:
        return False
    return True


@pytest.mark.parametrize(
    "text",
    [
        # ValueError from the parser: a number beyond the enum's int32 range.
        "metadata { [type.googleapis.com/google.protobuf.Value] { null_value: 3000000000 } }",
        "error { code: 99999999999 }",
        "metadata { [type.googleapis.com/google.rpc.Status] { code: -2147483649 } }",
        # RecursionError from the parser: a deep ListValue inside an Any.
        "metadata { [type.googleapis.com/google.protobuf.Value] { "
        + "list_value { values { " * 600
        + "}} " * 600
        + "} }",
        "metadata " + "<" * 5000,
        # An expanded Any whose prefix text cannot read.
        "metadata { [https://errors.example.com/google.rpc.ErrorInfo] { reason: 'R' } }",
        "metadata { [type.googleapis.com/google.rpc.ErrorInfo",
    ],
)
def test_bad_text_is_only_ever_a_conversion_error(text):
    with pytest.raises(ConversionError) as caught:
        from_text(text)
    assert len(str(caught.value)) < 1000


def test_a_parse_error_on_a_huge_line_quotes_a_bounded_excerpt():
    with pytest.raises(ConversionError) as caught:
        from_text('name: "' + "x" * 100_000 + '" nmae: 1')
    assert len(str(caught.value)) < 1000


def test_to_text_of_a_400_deep_any_chain_is_refused_like_to_json():
    deep = any_chain(400)
    with pytest.raises(ConversionError, match="nested more than"):
        to_json(deep)
    with pytest.raises(ConversionError, match="nested more than"):
        to_text(deep)


@pytest.mark.parametrize(
    ("build", "levels"),
    [(list_value_chain, range(44, 52)), (any_chain, range(94, 102))],
    ids=["list-value", "any"],
)
def test_text_refuses_exactly_what_json_refuses_at_the_depth_limit(build, levels):
    verdicts = []
    for level in levels:
        message = build(level)
        as_json, as_text = converts(to_json, message), converts(to_text, message)
        assert as_json == as_text, level
        if as_text:
            assert from_text(to_text(message)) == message
            assert converts(from_json, to_json(message))
        verdicts.append(as_text)
    assert True in verdicts and False in verdicts  # the limit lies inside the range


@pytest.mark.parametrize("levels", range(30, 36))
def test_text_input_nests_as_deep_as_json_input(levels):
    # A Struct of Structs: each level is a map entry and a Value, two message levels.
    json_text = (
        '{"metadata": {"@type": "type.googleapis.com/google.protobuf.Struct", "value": '
        + '{"a": ' * levels
        + "1"
        + "}" * levels
        + "}}"
    )
    text = (
        "metadata { [type.googleapis.com/google.protobuf.Struct] { "
        + 'fields { key: "a" value { struct_value { ' * (levels - 1)
        + 'fields { key: "a" value { number_value: 1 } }'
        + " } } }" * (levels - 1)
        + " } }"
    )
    assert converts(from_json, json_text) == converts(from_text, text)
    if converts(from_text, text):
        assert from_json(json_text) == from_text(text)


def test_the_golden_custom_type_url_prefix_round_trips_through_text():
    operation = from_json((GOLDEN_VALID / "any_custom_type_url_prefix.json").read_text())
    prefixed = [
        any_ for any_ in [operation.metadata, *operation.error.details]
        if any_.type_url.startswith("https://")
    ]  # fmt: skip
    assert prefixed, "the golden file has a custom type URL prefix"
    text = to_text(operation)
    assert from_text(text) == operation
    assert "[https://" not in text  # written as type_url and value, which reads back


@pytest.mark.parametrize(
    "type_url",
    [
        " type.googleapis.com/google.rpc.ErrorInfo",
        "type.googleapis.com /google.rpc.ErrorInfo",
        "https://errors.example.com/google.rpc.ErrorInfo",
        "errors.example.com/v1/google.rpc.ErrorInfo",
        "type.googleapis.com/google.rpc.ErrorInfo",
        "x] { } #/google.rpc.ErrorInfo",
    ],
)
def test_every_type_url_json_accepts_round_trips_through_text(type_url):
    operation = Operation(metadata=pack(error_details_pb2.ErrorInfo(reason="R")))
    operation.metadata.type_url = type_url
    assert from_json(to_json(operation)) == operation
    assert from_text(to_text(operation)) == operation
