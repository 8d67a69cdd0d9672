"""The JSON contract of the Operation (spec/operation-json.md), checked against golden files.

tests/golden/valid/<name>.json is an input; <name>.binpb is the message it must read as,
written by json_format (the reference implementation), not by v1op_pb, so that reading is
checked against an independent oracle; <name>.expected.json is the canonical output where the
input is not canonical itself. tests/golden/invalid/expected.json maps each invalid input to
the JSON path and a part of the message of the error it must raise. See tests/golden/README.md.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from factories import (
    DOCUMENTED_OUTPUT_ONLY_KEYS,
    make_failed,
    make_running,
    make_succeeded,
    make_timestamp,
)
from google.api import field_behavior_pb2
from google.protobuf import any_pb2, json_format, struct_pb2, wrappers_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from v1op.example.v1 import evaluation_pb2

from v1op_pb import (
    MAX_DEPTH,
    ConversionError,
    Operation,
    Status,
    from_dict,
    from_json,
    pack,
    to_dict,
    to_json,
    unpack,
)
from v1op_pb._codec.descriptors import is_repeated

# Importing evaluation_pb2 above also makes the example payload types resolvable in an Any.
GOLDEN = Path(__file__).parent / "golden"
VALID = GOLDEN / "valid"
INVALID = GOLDEN / "invalid"
TYPE_PREFIX = "type.googleapis.com/"

VALID_NAMES = sorted(
    p.name.removesuffix(".json")
    for p in VALID.glob("*.json")
    if not p.name.endswith(".expected.json")
)
GATEWAY_NAMES = [n for n in VALID_NAMES if n.startswith("gateway_")]
INVALID_MANIFEST: dict[str, dict[str, str]] = json.loads(
    (INVALID / "expected.json").read_text("utf-8")
)
INVALID_NAMES = sorted(INVALID_MANIFEST)
UNKNOWN_KEY_NAMES = [n for n in INVALID_NAMES if n.startswith("unknown_key_")]

# The eight fields the documented client drops from request bodies (spec: "Output only").
DOCUMENTED_OUTPUT_ONLY = DOCUMENTED_OUTPUT_ONLY_KEYS

# Well-known types whose JSON form is not an object of their fields.
SPECIAL_JSON_TYPES = {
    "google.protobuf.Any",
    "google.protobuf.Duration",
    "google.protobuf.FieldMask",
    "google.protobuf.ListValue",
    "google.protobuf.Struct",
    "google.protobuf.Timestamp",
    "google.protobuf.Value",
    *(
        f"google.protobuf.{name}"
        for name in (
            "DoubleValue",
            "FloatValue",
            "Int64Value",
            "UInt64Value",
            "Int32Value",
            "UInt32Value",
            "BoolValue",
            "StringValue",
            "BytesValue",
        )
    ),
}


# --- helpers -------------------------------------------------------------------------------


def valid_text(name: str) -> str:
    return (VALID / f"{name}.json").read_text("utf-8")


def valid_message(name: str) -> Operation:
    return Operation.FromString((VALID / f"{name}.binpb").read_bytes())


def canonical_json(name: str) -> Any:
    """The output expected for a golden input: its .expected.json, else the input itself."""
    expected = VALID / f"{name}.expected.json"
    if expected.exists():
        return json.loads(expected.read_text("utf-8"))
    return json.loads(valid_text(name))


def invalid_input(name: str) -> str | bytes:
    data = (INVALID / f"{name}.json").read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data  # the not-UTF-8 vectors must reach from_json as bytes


def assert_conversion_error(
    text: str | bytes, path: str, message: str, **kwargs: Any
) -> ConversionError:
    with pytest.raises(ConversionError, match=re.escape(message)) as excinfo:
        from_json(text, **kwargs)
    assert excinfo.value.path == path
    return excinfo.value


def assert_dict_error(obj: Any, path: str, message: str) -> None:
    with pytest.raises(ConversionError, match=re.escape(message)) as excinfo:
        from_dict(obj)
    assert excinfo.value.path == path


_SEGMENT = re.compile(r'\.([A-Za-z_][A-Za-z0-9_]*)|\[([0-9]+)\]|\["((?:[^"\\]|\\.)*)"\]')


def path_segments(path: str) -> list[str | int]:
    assert path.startswith("$")
    segments: list[str | int] = []
    rest = path[1:]
    while rest:
        match = _SEGMENT.match(rest)
        assert match, f"cannot parse {rest!r} of {path!r}"
        name, index, quoted = match.groups()
        if index is not None:
            segments.append(int(index))
        elif name is not None:
            segments.append(name)
        else:
            segments.append(json.loads(f'"{quoted}"'))
        rest = rest[match.end() :]
    return segments


def without_key_at(obj: Any, path: str) -> Any:
    """A copy of the JSON value with the object key that ``path`` names removed."""
    result = copy.deepcopy(obj)
    *parents, last = path_segments(path)
    node = result
    for segment in parents:
        node = node[segment]
    del node[last]
    return result


def everything() -> Operation:
    """An Operation with every field of Operation set (deleted and seen, too)."""
    op = make_succeeded()
    op.delete_time.CopyFrom(make_timestamp("2026-11-21T00:00:00Z"))
    op.deleter = "users/bob"
    return op


FACTORIES = {
    "running": make_running,
    "succeeded": make_succeeded,
    "failed": make_failed,
    "everything": everything,
}


def sample_operations() -> list[tuple[str, Operation]]:
    samples = [(name, factory()) for name, factory in FACTORIES.items()]
    samples += [(name, valid_message(name)) for name in VALID_NAMES]
    return samples


SAMPLE_IDS = [*FACTORIES, *VALID_NAMES]


# --- the golden corpus itself --------------------------------------------------------------


def test_golden_corpus_is_complete() -> None:
    # A missing .binpb or manifest entry would silently drop a vector from the suite.
    for name in VALID_NAMES:
        assert (VALID / f"{name}.binpb").exists(), name
    for expected in VALID.glob("*.expected.json"):
        assert (VALID / expected.name.replace(".expected.json", ".json")).exists()
    files = {p.stem for p in INVALID.glob("*.json")} - {"expected"}
    assert files == set(INVALID_MANIFEST)


@pytest.mark.parametrize(
    "name", [p.stem.removesuffix(".expected") for p in VALID.glob("*.expected.json")]
)
def test_expected_file_only_for_non_canonical_input(name: str) -> None:
    assert json.loads(valid_text(name)) != canonical_json(name)


# --- 1. valid vectors ----------------------------------------------------------------------


@pytest.mark.parametrize("name", VALID_NAMES)
def test_golden_reads_as_its_binary(name: str) -> None:
    expected = valid_message(name)
    text = valid_text(name)
    assert from_json(text) == expected
    assert from_json(text.encode("utf-8")) == expected
    # Any payloads are packed deterministically, so equal JSON gives equal bytes.
    binpb = (VALID / f"{name}.binpb").read_bytes()
    assert from_json(text).SerializeToString(deterministic=True) == binpb


@pytest.mark.parametrize("name", VALID_NAMES)
def test_golden_output_equals_json_format(name: str) -> None:
    message = valid_message(name)
    assert json.loads(to_json(message)) == json_format.MessageToDict(message)
    assert to_dict(message) == json_format.MessageToDict(message)


@pytest.mark.parametrize("name", VALID_NAMES)
def test_golden_output_is_canonical(name: str) -> None:
    assert json.loads(to_json(from_json(valid_text(name)))) == canonical_json(name)


@pytest.mark.parametrize("name", VALID_NAMES)
def test_golden_round_trip_is_lossless(name: str) -> None:
    # JSON -> proto -> JSON -> proto: the canonical form reads back as the same message and
    # prints as the same text again.
    text = to_json(from_json(valid_text(name)))
    assert from_json(text) == valid_message(name)
    assert to_json(from_json(text)) == text


# --- 2. invalid vectors --------------------------------------------------------------------


@pytest.mark.parametrize("name", INVALID_NAMES)
def test_golden_invalid(name: str) -> None:
    assert_conversion_error(invalid_input(name), **INVALID_MANIFEST[name])


@pytest.mark.parametrize("name", INVALID_NAMES)
def test_golden_invalid_as_bytes(name: str) -> None:
    data = (INVALID / f"{name}.json").read_bytes()
    assert_conversion_error(data, **INVALID_MANIFEST[name])


@pytest.mark.parametrize("name", UNKNOWN_KEY_NAMES)
def test_ignore_unknown_fields_drops_only_the_unknown_key(name: str) -> None:
    text = invalid_input(name)
    cleaned = without_key_at(json.loads(text), INVALID_MANIFEST[name]["path"])
    message = from_json(text, ignore_unknown_fields=True)
    assert message == from_dict(cleaned)
    assert message != Operation()


# Unknown enum names are skipped like unknown keys, as json_format does.
_IGNORABLE = {*UNKNOWN_KEY_NAMES, "unknown_enum_name"}


@pytest.mark.parametrize("name", [n for n in INVALID_NAMES if n not in _IGNORABLE])
def test_ignore_unknown_fields_keeps_every_other_error(name: str) -> None:
    assert_conversion_error(
        invalid_input(name), **INVALID_MANIFEST[name], ignore_unknown_fields=True
    )


def test_unknown_enum_name_is_dropped_when_ignoring_unknown_fields() -> None:
    message = from_json(invalid_input("unknown_enum_name"), ignore_unknown_fields=True)
    result = unpack(message.response)
    assert isinstance(result, evaluation_pb2.EvaluationResult)
    assert result.verdict == evaluation_pb2.EvaluationResult.VERDICT_UNSPECIFIED


def test_unregistered_type_message_says_how_to_register() -> None:
    error = assert_conversion_error(
        invalid_input("any_type_unregistered"),
        '$.response["@type"]',
        "type.googleapis.com/acme.billing.v1.Invoice",
    )
    assert "TypeRegistry.register" in error.reason
    assert "registry=" in error.reason


def test_unpaired_surrogate_in_a_top_level_any_type_url() -> None:
    # Without an enclosing message field there is nothing to turn a runtime TypeError into a
    # ConversionError; the type URL has to be checked as a string first.
    text = '{"@type": "type.googleapis.com/google.rpc.ErrorInfo\\ud800"}'
    with pytest.raises(ConversionError, match="unpaired UTF-16 surrogate") as excinfo:
        from_json(text, message_type=any_pb2.Any)
    assert excinfo.value.path == '$["@type"]'


def wkt_any(type_name: str, value_text: str) -> str:
    """JSON text of an Any holding a well-known type, whose JSON form sits under "value"."""
    return '{"@type": "' + TYPE_PREFIX + type_name + '", "value": ' + value_text + "}"


def _struct_nested(levels: int) -> str:
    return '{"a": ' * levels + "1" + "}" * levels


def test_struct_nested_deeper_than_max_depth() -> None:
    text = '{"metadata": ' + wkt_any("google.protobuf.Struct", _struct_nested(200)) + "}"
    with pytest.raises(ConversionError, match=f"more than {MAX_DEPTH} levels") as excinfo:
        from_json(text)
    # The error names the place where the limit was crossed, somewhere down the chain.
    assert re.fullmatch(r"\$\.metadata\.value(\.a)+", excinfo.value.path)
    assert len(excinfo.value.segments) <= MAX_DEPTH


def test_list_value_nested_deeper_than_max_depth() -> None:
    nested = "[" * 200 + "]" * 200
    text = '{"response": ' + wkt_any("google.protobuf.ListValue", nested) + "}"
    with pytest.raises(ConversionError, match=f"more than {MAX_DEPTH} levels") as excinfo:
        from_json(text)
    assert re.fullmatch(r"\$\.response\.value(\[0\])+", excinfo.value.path)


def test_any_nested_deeper_than_max_depth() -> None:
    inner = wkt_any("google.protobuf.Duration", '"1s"')
    for _ in range(150):
        inner = wkt_any("google.protobuf.Any", inner)
    with pytest.raises(ConversionError, match=f"more than {MAX_DEPTH} levels") as excinfo:
        from_json('{"metadata": ' + inner + "}")
    assert re.fullmatch(r"\$\.metadata(\.value)+", excinfo.value.path)


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000 + "]" * 100_000,
        "[" * 100_000,
        '{"a": ' * 100_000 + "1" + "}" * 100_000,
        '{"metadata": {"@type": "type.googleapis.com/google.protobuf.ListValue", "value": '
        + "[" * 100_000,
    ],
    ids=["arrays", "unclosed_arrays", "objects", "inside_an_any"],
)
def test_raw_nesting_is_a_conversion_error_not_recursion_error(text: str) -> None:
    # pytest.raises(ConversionError) lets a RecursionError through, failing the test.
    assert_conversion_error(text, "$", "nested more than")


@pytest.mark.parametrize("levels", [20, 33, 40, 49])
def test_nesting_that_reads_also_writes(levels: int) -> None:
    # Refusing deep input is fine; accepting a message that to_json (and unpack) then cannot
    # read back out of its Any is not: the binary decoder counts map entries as levels too.
    text = '{"metadata": ' + wkt_any("google.protobuf.Struct", _struct_nested(levels)) + "}"
    try:
        message = from_json(text)
    except ConversionError:
        assert levels > 20
        return
    assert json.loads(to_json(message)) == json.loads(text)


def test_writing_a_message_nested_deeper_than_max_depth() -> None:
    deep = struct_pb2.Value()
    node = deep
    for _ in range(MAX_DEPTH):
        node = node.struct_value.fields["a"]
    node.number_value = 1
    with pytest.raises(ConversionError, match=f"more than {MAX_DEPTH} levels"):
        to_dict(deep)


# --- 3. gateway style ----------------------------------------------------------------------


@pytest.mark.parametrize("name", GATEWAY_NAMES)
def test_gateway_input_reads_as_the_sparse_form(name: str) -> None:
    sparse = json.dumps(canonical_json(name))
    assert from_json(valid_text(name)) == from_json(sparse)


@pytest.mark.parametrize("name", GATEWAY_NAMES)
def test_gateway_input_may_carry_null_oneof_members(name: str) -> None:
    obj = json.loads(valid_text(name))
    for member in ("error", "response"):
        obj.setdefault(member, None)
    assert from_dict(obj) == valid_message(name)


@pytest.mark.parametrize("name", GATEWAY_NAMES)
def test_emit_unpopulated_reproduces_the_gateway_input(name: str) -> None:
    assert to_dict(valid_message(name), emit_unpopulated=True) == json.loads(valid_text(name))


def assert_every_field_present(message: Message, value: Any) -> None:
    """Every field of every regular message is in the JSON, unset messages as null, and
    oneof members (real or proto3 ``optional``) only when set."""
    descriptor = message.DESCRIPTOR
    if descriptor.full_name == "google.protobuf.Any":
        if message.type_url:
            inner = unpack(message)
            if inner.DESCRIPTOR.full_name not in SPECIAL_JSON_TYPES:
                payload = {k: v for k, v in value.items() if k != "@type"}
                assert_every_field_present(inner, payload)
        return
    if descriptor.full_name in SPECIAL_JSON_TYPES:
        return
    assert isinstance(value, dict)
    for field in descriptor.fields:
        key = field.json_name
        if field.containing_oneof is not None:
            assert (key in value) == message.HasField(field.name), key
            if key not in value:
                continue
        assert key in value, f"{descriptor.full_name}.{field.name} missing"
        item = getattr(message, field.name)
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            if value_field.message_type is not None:
                for map_key, sub in item.items():
                    assert_every_field_present(sub, value[key][str(map_key)])
        elif is_repeated(field):
            for sub, sub_value in zip(item, value[key], strict=True):
                assert_every_field_present(sub, sub_value)
        elif not message.HasField(field.name):
            assert value[key] is None, key
        else:
            assert_every_field_present(item, value[key])


@pytest.mark.parametrize(("name", "op"), sample_operations(), ids=SAMPLE_IDS)
def test_emit_unpopulated_writes_gateway_style_and_reads_back(name: str, op: Operation) -> None:
    value = to_dict(op, emit_unpopulated=True)
    assert_every_field_present(op, value)
    assert from_dict(value) == op
    assert from_json(to_json(op, emit_unpopulated=True)) == op


def test_emit_unpopulated_on_an_empty_operation() -> None:
    assert to_dict(Operation(), emit_unpopulated=True) == {
        "name": "",
        "createTime": None,
        "creator": "",
        "updateTime": None,
        "updater": "",
        "deleteTime": None,
        "deleter": "",
        "metadata": None,
        "done": False,
        "seenByCreatorTime": None,
    }


# --- 4. request form -----------------------------------------------------------------------


def is_output_only(field: FieldDescriptor) -> bool:
    behaviors = field.GetOptions().Extensions[field_behavior_pb2.field_behavior]
    return field_behavior_pb2.OUTPUT_ONLY in behaviors


def output_only_json_names() -> set[str]:
    return {f.json_name for f in Operation.DESCRIPTOR.fields if is_output_only(f)}


def strip_output_only(message: Message) -> None:
    """Clear OUTPUT_ONLY fields at every level, inside Any payloads too, as the request form
    leaves them out at every level."""
    if message.DESCRIPTOR.full_name == "google.protobuf.Any":
        if message.type_url:
            inner = unpack(message)
            strip_output_only(inner)
            message.value = inner.SerializeToString(deterministic=True)
        return
    for field, value in message.ListFields():
        if is_output_only(field):
            message.ClearField(field.name)
        elif field.message_type is None:
            continue
        elif field.message_type.GetOptions().map_entry:
            if field.message_type.fields_by_name["value"].message_type is not None:
                for item in value.values():
                    strip_output_only(item)
        elif is_repeated(field):
            for item in value:
                strip_output_only(item)
        else:
            strip_output_only(value)


def test_output_only_fields_are_the_eight_documented_ones() -> None:
    names = output_only_json_names()
    assert len(names) == 8
    assert names == DOCUMENTED_OUTPUT_ONLY


@pytest.mark.parametrize(("name", "op"), sample_operations(), ids=SAMPLE_IDS)
def test_request_form_omits_exactly_the_output_only_fields(name: str, op: Operation) -> None:
    full = to_dict(op)
    request = to_dict(op, omit_output_only=True)
    assert set(full) - set(request) == set(full) & output_only_json_names()

    stripped = Operation()
    stripped.CopyFrom(op)
    strip_output_only(stripped)
    assert request == to_dict(stripped)
    assert from_dict(request) == stripped


def test_request_form_of_everything_drops_all_eight() -> None:
    op = everything()
    assert set(to_dict(op)) - set(to_dict(op, omit_output_only=True)) == DOCUMENTED_OUTPUT_ONLY


@pytest.mark.parametrize(("name", "op"), sample_operations(), ids=SAMPLE_IDS)
def test_request_form_in_gateway_style(name: str, op: Operation) -> None:
    value = to_dict(op, emit_unpopulated=True, omit_output_only=True)
    set_oneof = {f for f in ("error", "response") if op.HasField(f)}
    assert set(value) == {"metadata", "done"} | set_oneof


# --- 5. from_dict leaves its input alone ---------------------------------------------------


@pytest.mark.parametrize("name", VALID_NAMES)
def test_from_dict_does_not_mutate_valid_input(name: str) -> None:
    obj = json.loads(valid_text(name))
    before = copy.deepcopy(obj)
    from_dict(obj)
    assert obj == before
    # == treats 1 and 1.0 and True alike; the text does not.
    assert json.dumps(obj) == json.dumps(before)


# Errors that a parsed dict still shows (not duplicates, NaN or bad text), with Any payloads.
_DICT_ERRORS = [
    "unknown_key_top_level",
    "unknown_key_in_any_payload",
    "unknown_key_in_error_detail",
    "unknown_key_in_wkt_any",
    "field_given_twice_in_any",
    "both_error_and_response",
    "any_without_type",
    "any_type_unregistered",
    "bad_base64_in_any",
    "null_in_repeated",
    "int32_overflow",
    "timestamp_feb_30",
    "unpaired_low_surrogate_in_struct",
]


@pytest.mark.parametrize("name", _DICT_ERRORS)
def test_from_dict_does_not_mutate_input_on_error(name: str) -> None:
    obj = json.loads(invalid_input(name))
    before = copy.deepcopy(obj)
    returned = None
    with pytest.raises(ConversionError):
        returned = from_dict(obj)
    assert returned is None
    assert obj == before
    assert json.dumps(obj) == json.dumps(before)


@pytest.mark.parametrize("name", _DICT_ERRORS)
def test_from_dict_reports_the_same_path_as_from_json(name: str) -> None:
    assert_dict_error(json.loads(invalid_input(name)), **INVALID_MANIFEST[name])


# --- 6. output -----------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "op"), sample_operations(), ids=SAMPLE_IDS)
def test_to_json_is_compact(name: str, op: Operation) -> None:
    text = to_json(op)
    assert text == orjson.dumps(json.loads(text)).decode()


def test_to_json_indent_pretty_prints() -> None:
    op = make_failed()
    text = to_json(op, indent=2)
    assert text == json.dumps(to_dict(op), indent=2, ensure_ascii=False)
    assert text.splitlines()[1].startswith('  "name": ')
    assert json.loads(text) == json.loads(to_json(op))


def test_to_json_keeps_non_ascii_text() -> None:
    text = to_json(valid_message("running_typed_metadata"))
    assert "naïve \u2013 ✓ 😀" in text


@pytest.mark.parametrize(
    ("op", "text"),
    [
        (Operation(), "{}"),
        (Operation(name="", done=False, creator=""), "{}"),
        (Operation(name="operations/1"), '{"name":"operations/1"}'),
        (Operation(done=True, error=Status()), '{"done":true,"error":{}}'),
        (Operation(metadata=any_pb2.Any()), '{"metadata":{}}'),
    ],
    ids=["empty", "defaults", "name_only", "empty_error", "empty_any"],
)
def test_output_omits_unset_fields(op: Operation, text: str) -> None:
    assert to_json(op) == text
    assert json.loads(text) == json_format.MessageToDict(op)


def test_timestamps_keep_nine_fraction_digits() -> None:
    value = to_dict(make_running())
    assert value["createTime"] == "2026-11-20T09:15:02.123456789Z"
    assert value["updateTime"] == "2026-11-20T09:16:00.500Z"


def test_int64_values_are_strings_and_int32_numbers() -> None:
    succeeded = to_dict(make_succeeded())
    assert succeeded["metadata"]["itemsDone"] == "30"
    assert succeeded["response"]["tokensUsed"] == str(2**64 - 1)
    wrapped = to_dict(Operation(metadata=pack(wrappers_pb2.Int64Value(value=-(2**63)))))
    assert wrapped["metadata"]["value"] == str(-(2**63))
    code = to_dict(make_failed())["error"]["code"]
    assert type(code) is int
    assert code == 8


@pytest.mark.parametrize("factory", FACTORIES.values(), ids=FACTORIES.keys())
def test_proto_json_proto_round_trip(factory: Any) -> None:
    op = factory()
    assert from_json(to_json(op)) == op
    assert from_json(to_json(op, indent=2)) == op


@pytest.mark.parametrize(("name", "op"), sample_operations(), ids=SAMPLE_IDS)
def test_keys_follow_field_numbers(name: str, op: Operation) -> None:
    # The proto numbers fields in the documented property order so that output follows it.
    order = [f.json_name for f in sorted(Operation.DESCRIPTOR.fields, key=lambda f: f.number)]
    keys = list(to_dict(op))
    assert keys == [k for k in order if k in keys]


# --- bugs found by the golden corpus, pinned one by one ------------------------------------


@pytest.mark.parametrize("empty", ["{}", "[]"])
def test_empty_struct_or_list_inside_a_value_is_kept(empty: str) -> None:
    # A Value holding {} or [] is set (struct_value / list_value), not "no kind" (null).
    text = '{"metadata": ' + wkt_any("google.protobuf.Struct", '{"k": ' + empty + "}") + "}"
    assert json.loads(to_json(from_json(text))) == json.loads(text)
    value = unpack(from_json(text).metadata).fields["k"]
    assert value.WhichOneof("kind") == ("struct_value" if empty == "{}" else "list_value")


def test_float_max_reads_back_from_its_own_output() -> None:
    # 3.4028235e+38, the shortest text of FLT_MAX, is a little above FLT_MAX as a double
    # but rounds to it as a float: the binding's own output must read back.
    op = Operation(metadata=pack(wrappers_pb2.FloatValue(value=3.4028234663852886e38)))
    text = to_json(op)
    assert '"value":3.4028235e+38' in text
    assert from_json(text) == op


# --- where orjson alone would read the text differently from json.loads --------------------

Progress = evaluation_pb2.EvaluationProgress


@pytest.mark.parametrize("text", ['{"itemsDone": -9223372036854775809}', b'{"itemsDone": 1e19}'])
def test_integer_beyond_64_bits_is_out_of_range_not_rounded(text: str | bytes) -> None:
    # orjson reads -9223372036854775809 as the float -2**63, which is in range.
    assert_conversion_error(text, "$.itemsDone", "int64 out of range", message_type=Progress)


def test_largest_int64_reads_exactly() -> None:
    text = '{"itemsDone": 9223372036854775807, "itemsTotal": "-9223372036854775808"}'
    progress = from_json(text, message_type=Progress)
    assert (progress.items_done, progress.items_total) == (2**63 - 1, -(2**63))


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "a", "name": "b"}',
        '{"name": "a:b", "name": "c"}',
        '{"name": "a", "name": "b:c"}',
        # \u003a is a colon in the value read but not in the text: the colon counts match.
        '{"name": "a", "name": "\\u003a"}',
        b'{"name": "a", "name": "b"}',
    ],
)
def test_duplicate_keys_are_found_whatever_the_strings_hold(text: str | bytes) -> None:
    assert_conversion_error(text, "$.name", "duplicate key 'name'")


def test_nesting_too_deep_for_orjson_to_write_is_still_checked() -> None:
    # orjson reads 300 levels but writes at most 254; the exact reading takes over and
    # gives the error json.loads' value gives.
    text = '{"metadata": {"@type": "type.googleapis.com/google.protobuf.Value", "value": '
    text += "[" * 300 + "]" * 300 + "}}"
    with pytest.raises(ConversionError) as expected:
        from_dict(json.loads(text))
    error = assert_conversion_error(
        text, expected.value.path, f"messages nested more than {MAX_DEPTH} levels"
    )
    assert error.path.startswith("$.metadata.value[0][0]")


# --- from_dict of what no JSON text could hold (issue 11) -------------------------------------

VALUE_URL = "type.googleapis.com/google.protobuf.Value"


@pytest.mark.parametrize(
    ("obj", "path"),
    [
        ({None: 1}, "$[None]"),
        ({1: 1}, "$[1]"),
        ({("a",): 1}, "$[('a',)]"),
        ({"metadata": {"@type": "type.googleapis.com/google.rpc.ErrorInfo", None: 1}},
         "$.metadata[None]"),
        ({"metadata": {"@type": "type.googleapis.com/google.protobuf.Struct", "value": {None: 1}}},
         "$.metadata.value[None]"),
        ({"error": {"details": [
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "metadata": {None: "x"}}]}},
         "$.error.details[0].metadata[None]"),
    ],
)  # fmt: skip
def test_from_dict_refuses_keys_that_are_not_strings(obj, path):
    with pytest.raises(ConversionError) as caught:
        from_dict(obj)
    assert caught.value.path == path
    str(caught.value)  # the message itself formats


@pytest.mark.parametrize(
    "value",
    [
        float("nan"),
        [1.0, float("nan")],
        {"a": {"b": float("nan")}},
    ],
)
def test_from_dict_refuses_a_nan_in_a_value_as_to_json_would(value):
    with pytest.raises(ConversionError, match="nan has no JSON form"):
        from_dict({"metadata": {"@type": VALUE_URL, "value": value}})


def test_a_nan_where_json_has_a_form_for_it_is_still_taken():
    # A double field writes NaN as "NaN", so from_dict takes a float NaN there.
    operation = from_dict(
        {
            "metadata": {
                "@type": "type.googleapis.com/google.protobuf.DoubleValue",
                "value": float("nan"),
            }
        }
    )
    assert to_json(operation).endswith('"value":"NaN"}}')


@pytest.mark.parametrize("container", ["Struct", "ListValue", "Value"])
def test_an_unknown_field_in_a_value_inside_a_struct_is_refused_not_written_as_null(container):
    # Field 6 (list_value) with the varint wire type: a field the schema cannot read.
    odd = struct_pb2.Value.FromString(b"0\x00")
    if container == "Struct":
        payload = struct_pb2.Struct(fields={"a": odd})
    elif container == "ListValue":
        payload = struct_pb2.ListValue(values=[odd])
    else:
        payload = struct_pb2.Value(list_value=struct_pb2.ListValue(values=[odd]))
    operation = Operation(
        response=any_pb2.Any(
            type_url=f"type.googleapis.com/google.protobuf.{container}",
            value=payload.SerializeToString(),
        )
    )
    with pytest.raises(ConversionError, match="carries fields its schema does not know"):
        to_json(operation)


@pytest.mark.parametrize("number", [5, -1])
def test_a_null_value_that_is_not_null_value_is_refused_not_written_as_null(number):
    value = struct_pb2.Value()
    value.null_value = number
    operation = Operation(metadata=pack(value))
    with pytest.raises(ConversionError, match="has no JSON form"):
        to_json(operation)
    # Within a Struct too, where strings and numbers take a shortcut.
    struct = struct_pb2.Struct(fields={"a": value})
    with pytest.raises(ConversionError, match=r"\$\.metadata\.value\.a: .*no JSON form"):
        to_json(Operation(metadata=pack(struct)))
