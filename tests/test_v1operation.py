"""V1Operation: the documented model's names and behaviour, backed by a real Operation."""

from __future__ import annotations

import ast
import contextlib
import datetime
import io
import re

import pytest
from factories import (
    DOCUMENTED_OUTPUT_ONLY_KEYS,
    make_failed,
    make_running,
    make_succeeded,
    make_timestamp,
)
from google.protobuf import any_pb2, duration_pb2, timestamp_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from v1op.example.v1 import evaluation_pb2

from v1op_pb import (
    ConversionError,
    DatetimeWithNanoseconds,
    Operation,
    V1Operation,
    make_status,
    pack,
    unpack,
)

UTC = datetime.timezone.utc
PLUS_TWO = datetime.timezone(datetime.timedelta(hours=2))
RUNNING_NAME = "operations/11111111-2222-4333-8444-555555555555"
PROGRESS_URL = "type.googleapis.com/v1op.example.v1.EvaluationProgress"
DURATION_URL = "type.googleapis.com/google.protobuf.Duration"
ERROR_INFO_URL = "type.googleapis.com/google.rpc.ErrorInfo"
TIME_FIELDS = ["create_time", "update_time", "delete_time", "seen_by_creator_time"]
STRING_FIELDS = ["name", "creator", "updater", "deleter"]
JSON_NAMES = {
    "create_time": "createTime",
    "update_time": "updateTime",
    "delete_time": "deleteTime",
    "seen_by_creator_time": "seenByCreatorTime",
}
OUTPUT_ONLY_KEYS = DOCUMENTED_OUTPUT_ONLY_KEYS
FACTORIES = pytest.mark.parametrize(
    "make", [make_running, make_succeeded, make_failed, Operation], ids=lambda f: f.__name__
)

# The example of V1Operation.md, verbatim but for its import line.
DOCUMENTED_EXAMPLE = """\
from v1op_pb import V1Operation

# TODO update the JSON string below
json = "{}"
# create an instance of V1Operation from a JSON string
v1_operation_instance = V1Operation.from_json(json)
# print the JSON string representation of the object
print(V1Operation.to_json())

# convert the object into a dict
v1_operation_dict = v1_operation_instance.to_dict()
# create an instance of V1Operation from a dict
v1_operation_from_dict = V1Operation.from_dict(v1_operation_dict)
"""

RUNNING_METADATA = {
    "@type": PROGRESS_URL,
    "progress": 0.25,
    "message": "scoring 30 of 120",
    "itemsDone": "30",
    "itemsTotal": "120",
}
RUNNING_JSON = {
    "name": RUNNING_NAME,
    "createTime": "2026-11-20T09:15:02.123456789Z",
    "creator": "users/ada",
    "updateTime": "2026-11-20T09:16:00.500Z",
    "updater": "services/evaluator",
    "metadata": RUNNING_METADATA,
}


def make_op(make=make_running) -> V1Operation:
    return V1Operation.from_proto(make())


def make_all_output_only() -> V1Operation:
    return V1Operation(
        name="operations/x",
        create_time="2026-01-01T00:00:00.000000001Z",
        creator="users/a",
        update_time="2026-01-02T00:00:00Z",
        updater="users/b",
        delete_time="2026-01-03T00:00:00Z",
        deleter="users/c",
        seen_by_creator_time="2026-01-04T00:00:00Z",
        done=True,
    )


def make_progress(progress: float = 0.5) -> evaluation_pb2.EvaluationProgress:
    return evaluation_pb2.EvaluationProgress(progress=progress, message="half", items_done=1)


# --- the documented example -------------------------------------------------------------


def test_documented_example_runs_with_only_the_import_changed():
    out = io.StringIO()
    namespace: dict = {}
    with contextlib.redirect_stdout(out):
        exec(DOCUMENTED_EXAMPLE, namespace)

    assert out.getvalue() == "{}\n"
    assert namespace["v1_operation_dict"] == {}
    assert namespace["v1_operation_from_dict"] == namespace["v1_operation_instance"]
    assert namespace["v1_operation_instance"] == V1Operation()


def test_class_level_to_json_and_to_dict_serialise_an_empty_operation():
    assert V1Operation.to_json() == "{}"
    assert V1Operation.to_dict() == {}
    assert V1Operation.to_json(omit_output_only=True) == "{}"


# --- reading attributes -----------------------------------------------------------------


def test_running_attributes_have_the_documented_names_and_kinds():
    op = make_op(make_running)

    assert op.name == RUNNING_NAME
    assert op.creator == "users/ada"
    assert op.updater == "services/evaluator"
    assert op.deleter is None
    assert op.done is False
    assert op.delete_time is None
    assert op.seen_by_creator_time is None
    assert op.error is None
    assert op.response is None
    assert isinstance(op.metadata, any_pb2.Any)
    assert unpack(op.metadata) == evaluation_pb2.EvaluationProgress(
        progress=0.25, message="scoring 30 of 120", items_done=30, items_total=120
    )


def test_times_read_as_datetimes_with_all_nine_digits():
    op = make_op(make_running)

    assert type(op.create_time) is DatetimeWithNanoseconds
    assert op.create_time.nanosecond == 123_456_789
    assert op.create_time == datetime.datetime(2026, 11, 20, 9, 15, 2, 123_456, tzinfo=UTC)
    assert op.create_time.utcoffset() == datetime.timedelta(0)
    assert op.update_time.nanosecond == 500_000_000


def test_failed_error_reads_as_a_status():
    op = make_op(make_failed)

    assert isinstance(op.error, status_pb2.Status)
    assert op.error.code == code_pb2.RESOURCE_EXHAUSTED
    assert op.error.message == "token quota exhausted"
    assert [d.type_url.rsplit(".", 1)[-1] for d in op.error.details] == [
        "ErrorInfo",
        "RetryInfo",
        "BadRequest",
        "LocalizedMessage",
        "Help",
    ]
    assert op.response is None
    assert op.done is True


def test_succeeded_response_reads_as_an_any():
    op = make_op(make_succeeded)

    assert isinstance(op.response, any_pb2.Any)
    assert unpack(op.response).tokens_used == 2**64 - 1
    assert op.error is None
    assert op.seen_by_creator_time == datetime.datetime(2026, 11, 20, 10, tzinfo=UTC)


def test_empty_operation_reads_none_everywhere_but_done():
    op = V1Operation()

    for name in [*STRING_FIELDS, *TIME_FIELDS, "metadata", "error", "response"]:
        assert getattr(op, name) is None, name
    assert op.done is False


# --- setting strings and done -----------------------------------------------------------


@pytest.mark.parametrize("field", STRING_FIELDS)
def test_string_fields_set_clear_and_read_none_when_empty(field):
    op = V1Operation()

    setattr(op, field, "users/zoe")
    assert getattr(op, field) == "users/zoe"
    setattr(op, field, "")
    assert getattr(op, field) is None
    setattr(op, field, "x")
    setattr(op, field, None)
    assert getattr(op, field) is None


@pytest.mark.parametrize("value", [5, b"operations/x", ["x"]])
def test_string_fields_refuse_other_types(value):
    op = make_op()

    with pytest.raises(TypeError, match=re.escape("name must be a str, got")):
        op.name = value
    assert op.name == RUNNING_NAME


@pytest.mark.parametrize("value", ["yes", "true", 1, 0, 1.0])
def test_done_takes_only_a_bool(value):
    op = V1Operation(done=True)

    with pytest.raises(TypeError, match=re.escape("done must be a bool, got")):
        op.done = value
    assert op.done is True


def test_done_set_and_clear():
    op = V1Operation()

    op.done = True
    assert op.done is True
    op.done = None
    assert op.done is False


# --- setting times ----------------------------------------------------------------------


@pytest.mark.parametrize("field", TIME_FIELDS)
@pytest.mark.parametrize(
    "value",
    [
        DatetimeWithNanoseconds(2026, 3, 4, 7, 6, 7, nanosecond=1, tzinfo=PLUS_TWO),
        DatetimeWithNanoseconds(2026, 3, 4, 5, 6, 7, nanosecond=1, tzinfo=UTC),
        "2026-03-04T05:06:07.000000001Z",
        "2026-03-04T07:06:07.000000001+02:00",
        make_timestamp("2026-03-04T05:06:07.000000001Z"),
    ],
    ids=["offset-datetime", "utc-datetime", "utc-text", "offset-text", "timestamp"],
)
def test_time_fields_take_datetime_text_or_timestamp(field, value):
    op = V1Operation()

    setattr(op, field, value)

    got = getattr(op, field)
    assert got.rfc3339() == "2026-03-04T05:06:07.000000001Z"
    assert op.to_dict() == {JSON_NAMES[field]: "2026-03-04T05:06:07.000000001Z"}


def test_time_field_takes_a_plain_aware_datetime():
    op = V1Operation()

    op.create_time = datetime.datetime(2026, 3, 4, 5, 6, 7, 890_000, tzinfo=PLUS_TWO)

    assert op.to_dict() == {"createTime": "2026-03-04T03:06:07.890Z"}


def test_time_field_setter_copies_a_timestamp():
    stamp = make_timestamp("2026-03-04T05:06:07Z")
    op = V1Operation(create_time=stamp)

    stamp.seconds += 1

    assert op.create_time.rfc3339() == "2026-03-04T05:06:07Z"


def test_time_field_clears_with_none():
    op = make_op()

    op.create_time = None

    assert op.create_time is None
    assert "createTime" not in op.to_dict()


def test_naive_datetime_is_refused():
    op = make_op()

    with pytest.raises(ValueError, match=re.escape("has no time zone; give an aware datetime")):
        op.create_time = datetime.datetime(2026, 3, 4, 5, 6, 7)
    assert op.create_time.nanosecond == 123_456_789


@pytest.mark.parametrize("value", [1700000000, 1.5, datetime.date(2026, 3, 4), b"2026"])
def test_time_field_refuses_other_types(value):
    with pytest.raises(
        TypeError,
        match=re.escape("create_time must be a datetime, a Timestamp or RFC 3339 text, got"),
    ):
        V1Operation(create_time=value)


@pytest.mark.parametrize(
    ("field", "text"),
    [
        ("create_time", "yesterday"),
        ("create_time", "2026-03-04 05:06:07Z"),
        ("update_time", "2026-02-30T00:00:00Z"),
        ("delete_time", "2026-03-04T05:06:07"),
        ("seen_by_creator_time", "2026-03-04T05:06:07.1234567890Z"),
    ],
)
def test_bad_time_text_fails_with_the_json_path(field, text):
    op = V1Operation()

    with pytest.raises(ConversionError) as info:
        setattr(op, field, text)

    assert info.value.path == f"$.{JSON_NAMES[field]}"
    assert str(info.value).startswith(f"$.{JSON_NAMES[field]}: ")
    assert getattr(op, field) is None


@pytest.mark.parametrize(
    "value",
    [
        datetime.datetime(1, 1, 1, tzinfo=PLUS_TWO),
        timestamp_pb2.Timestamp(seconds=253402300800),
        timestamp_pb2.Timestamp(seconds=0, nanos=-1),
    ],
    ids=["before-year-1", "after-year-9999", "negative-nanos"],
)
def test_time_outside_the_json_range_is_refused(value):
    with pytest.raises(ConversionError) as info:
        V1Operation(create_time=value)

    assert info.value.path == "$.createTime"


# --- setting metadata, response, error --------------------------------------------------


@pytest.mark.parametrize("field", ["metadata", "response"])
@pytest.mark.parametrize(
    "value",
    [
        pack(make_progress()),
        make_progress(),
        {
            "@type": PROGRESS_URL,
            "progress": 0.5,
            "message": "half",
            "itemsDone": "1",
        },
    ],
    ids=["any", "message", "dict"],
)
def test_any_fields_take_an_any_a_message_or_its_json(field, value):
    op = V1Operation()

    setattr(op, field, value)

    assert isinstance(getattr(op, field), any_pb2.Any)
    assert unpack(getattr(op, field)) == make_progress()


def test_any_field_packs_a_well_known_type():
    op = V1Operation(metadata=duration_pb2.Duration(seconds=1, nanos=500_000_000))

    assert op.to_dict() == {"metadata": {"@type": DURATION_URL, "value": "1.500s"}}


def test_any_setter_copies_its_value():
    payload = pack(make_progress())
    op = V1Operation(metadata=payload)

    payload.type_url = "type.googleapis.com/changed"

    assert op.metadata.type_url == PROGRESS_URL


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ({"@type": PROGRESS_URL, "progress": "half"}, "$.metadata.progress"),
        ({"@type": PROGRESS_URL, "nope": 1}, "$.metadata.nope"),
        ({"@type": "type.googleapis.com/no.such.Type"}, '$.metadata["@type"]'),
        ({"progress": 0.5}, "$.metadata"),
        ({"@type": DURATION_URL, "value": "forever"}, "$.metadata.value"),
    ],
)
def test_bad_any_json_fails_with_the_json_path(value, path):
    op = make_op()

    with pytest.raises(ConversionError) as info:
        op.metadata = value

    assert info.value.path == path
    assert unpack(op.metadata) == unpack(make_op().metadata)


@pytest.mark.parametrize("value", ["x", 5, [RUNNING_METADATA]])
def test_any_field_refuses_other_types(value):
    with pytest.raises(
        TypeError,
        match=re.escape("metadata must be a google.protobuf.Any or its JSON form as a dict, got"),
    ):
        V1Operation(metadata=value)


@pytest.mark.parametrize(
    "value",
    [
        make_status(code_pb2.NOT_FOUND, "gone", [error_details_pb2.ErrorInfo(reason="R")]),
        {
            "code": 5,
            "message": "gone",
            "details": [{"@type": ERROR_INFO_URL, "reason": "R"}],
        },
    ],
    ids=["status", "dict"],
)
def test_error_takes_a_status_or_its_json(value):
    op = V1Operation(done=True)

    op.error = value

    assert isinstance(op.error, status_pb2.Status)
    assert op.to_dict()["error"] == {
        "code": 5,
        "message": "gone",
        "details": [{"@type": ERROR_INFO_URL, "reason": "R"}],
    }


@pytest.mark.parametrize(
    "value", [error_details_pb2.ErrorInfo(reason="R"), pack(make_progress()), "gone", 5]
)
def test_error_refuses_other_types(value):
    # A Status is not an Any: a message of another type is not packed into it.
    with pytest.raises(
        TypeError,
        match=re.escape("error must be a google.rpc.Status or its JSON form as a dict, got"),
    ):
        V1Operation(error=value)


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ({"code": "five"}, "$.error.code"),
        ({"details": [{"@type": ERROR_INFO_URL, "reason": 5}]}, "$.error.details[0].reason"),
        ({"details": {"@type": ERROR_INFO_URL}}, "$.error.details"),
        ({"status": 5}, "$.error.status"),
    ],
)
def test_bad_error_json_fails_with_the_json_path(value, path):
    op = make_op(make_failed)

    with pytest.raises(ConversionError) as info:
        op.error = value

    assert info.value.path == path
    assert op.error == make_failed().error


def test_setting_response_clears_error():
    op = make_op(make_failed)

    op.response = make_progress()

    assert op.error is None
    assert unpack(op.response) == make_progress()
    assert "error" not in op.to_dict()


def test_setting_error_clears_response():
    op = make_op(make_succeeded)

    op.error = {"code": 13}

    assert op.response is None
    assert op.error.code == 13


def test_clearing_the_outcome_with_none():
    op = make_op(make_failed)

    op.error = None

    assert op.error is None
    assert op.response is None
    assert op.to_proto().WhichOneof("result") is None


# --- the constructor --------------------------------------------------------------------


def test_constructor_takes_python_names_and_camel_case_aliases():
    by_python = V1Operation(
        name="operations/x",
        create_time="2026-01-01T00:00:00Z",
        seen_by_creator_time="2026-01-02T00:00:00Z",
        done=True,
        error={"code": 5},
    )
    by_alias = V1Operation(
        name="operations/x",
        createTime="2026-01-01T00:00:00Z",
        seenByCreatorTime="2026-01-02T00:00:00Z",
        done=True,
        error={"code": 5},
    )

    assert by_python == by_alias
    assert by_alias.create_time == datetime.datetime(2026, 1, 1, tzinfo=UTC)
    assert by_alias.to_dict() == {
        "name": "operations/x",
        "createTime": "2026-01-01T00:00:00Z",
        "seenByCreatorTime": "2026-01-02T00:00:00Z",
        "done": True,
        "error": {"code": 5},
    }


@pytest.mark.parametrize("key", ["nme", "createtime", "result", "_message", "to_json"])
def test_constructor_refuses_an_unknown_keyword(key):
    with pytest.raises(TypeError, match=re.escape(f"V1Operation has no field {key!r}")):
        V1Operation(**{key: "x"})


def test_constructor_errors_carry_the_path():
    with pytest.raises(ConversionError) as info:
        V1Operation(updateTime="soon")

    assert info.value.path == "$.updateTime"


# --- JSON and dict forms ----------------------------------------------------------------


def test_to_dict_includes_output_only_fields():
    assert make_op(make_running).to_dict() == RUNNING_JSON


def test_to_dict_omit_output_only_is_the_request_form():
    assert make_op(make_running).to_dict(omit_output_only=True) == {"metadata": RUNNING_METADATA}


def test_all_eight_output_only_fields_are_written_and_can_be_omitted():
    op = make_all_output_only()

    assert set(op.to_dict()) == OUTPUT_ONLY_KEYS | {"done"}
    assert op.to_dict(omit_output_only=True) == {"done": True}
    assert V1Operation.from_json(op.to_json()) == op


def test_to_json_is_compact_and_indentable():
    op = V1Operation(name="operations/é", done=True)

    assert op.to_json() == '{"name":"operations/é","done":true}'
    assert op.to_json(indent=2) == '{\n  "name": "operations/é",\n  "done": true\n}'
    assert op.to_json(omit_output_only=True) == '{"done":true}'


@FACTORIES
def test_json_round_trip_keeps_everything(make):
    op = make_op(make)

    again = V1Operation.from_json(op.to_json())

    assert again == op
    assert again.to_proto() == make()
    assert again.to_dict() == op.to_dict()


@FACTORIES
def test_dict_round_trip_keeps_everything(make):
    op = make_op(make)

    assert V1Operation.from_dict(op.to_dict()) == op


def test_from_dict_reads_snake_case_and_camel_case_alike():
    camel = V1Operation.from_dict(RUNNING_JSON)
    snake = V1Operation.from_dict(
        {
            "name": RUNNING_NAME,
            "create_time": "2026-11-20T09:15:02.123456789Z",
            "creator": "users/ada",
            "update_time": "2026-11-20T09:16:00.500Z",
            "updater": "services/evaluator",
            "metadata": {
                "@type": PROGRESS_URL,
                "progress": 0.25,
                "message": "scoring 30 of 120",
                "items_done": "30",
                "items_total": "120",
            },
        }
    )

    assert camel == snake == make_op(make_running)
    assert snake.create_time.nanosecond == 123_456_789


def test_from_dict_does_not_change_its_input():
    data = {"name": "operations/x", "error": {"code": 5, "details": []}}

    V1Operation.from_dict(data)

    assert data == {"name": "operations/x", "error": {"code": 5, "details": []}}


def test_from_json_accepts_null_as_not_set():
    op = V1Operation.from_json('{"name": null, "createTime": null, "error": null, "done": null}')

    assert op == V1Operation()


def test_from_json_refuses_unknown_keys_unless_asked():
    with pytest.raises(ConversionError) as info:
        V1Operation.from_json('{"nmae": "operations/x"}')
    assert info.value.path == "$.nmae"

    op = V1Operation.from_json('{"nmae": "x", "done": true}', ignore_unknown_fields=True)
    assert op == V1Operation(done=True)


def test_to_str_is_the_dict_pretty_printed():
    op = make_op(make_failed)

    assert ast.literal_eval(op.to_str()) == op.to_dict()


# --- protobuf access --------------------------------------------------------------------


@FACTORIES
def test_to_proto_and_from_proto_round_trip(make):
    assert make_op(make).to_proto() == make()


def test_from_proto_copies_the_message():
    message = make_running()
    op = V1Operation.from_proto(message)

    message.name = "operations/changed"
    message.metadata.type_url = "type.googleapis.com/changed"

    assert op.name == RUNNING_NAME
    assert op.metadata.type_url == PROGRESS_URL


def test_to_proto_returns_a_copy():
    op = make_op()

    copy = op.to_proto()
    copy.name = "operations/changed"
    copy.create_time.nanos = 0
    copy.done = True

    assert op == make_op()
    assert op.create_time.nanosecond == 123_456_789


@pytest.mark.parametrize(
    "value", [make_running().SerializeToString(), status_pb2.Status(), RUNNING_JSON]
)
def test_from_proto_refuses_other_types(value):
    with pytest.raises(TypeError, match=re.escape("expected a v1op.v1.Operation, got")):
        V1Operation.from_proto(value)


# --- equality and repr ------------------------------------------------------------------


def test_equality_follows_the_message():
    assert make_op(make_failed) == make_op(make_failed)
    assert make_op(make_failed) != make_op(make_succeeded)
    assert V1Operation() == V1Operation()

    changed = make_op(make_failed)
    changed.error.details.pop()
    assert changed != make_op(make_failed)


def test_equality_sees_nanoseconds():
    assert V1Operation(create_time="2026-01-01T00:00:00.000000001Z") != V1Operation(
        create_time="2026-01-01T00:00:00.000000002Z"
    )


def test_not_equal_to_other_types_and_not_hashable():
    op = make_op()

    assert op != make_running()
    assert op != RUNNING_JSON
    with pytest.raises(TypeError):
        hash(op)


@pytest.mark.parametrize(
    "op",
    [
        make_op(make_running),
        make_op(make_succeeded),
        make_op(make_failed),
        V1Operation(),
        make_all_output_only(),
        V1Operation(name="quote \" and ' and \\ and \n and é"),
    ],
    ids=["running", "succeeded", "failed", "empty", "all-output-only", "awkward-text"],
)
def test_repr_round_trips_through_eval(op):
    again = eval(repr(op), {"V1Operation": V1Operation})

    assert again == op
    assert repr(again) == repr(op)
