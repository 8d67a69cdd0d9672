"""Differential tests against the documented client, eval-studio-client 1.3.20.

Where the documented client models a field, ours must agree with it; where operation-json.md
lists what the documented client loses or wrongly accepts, ours must keep or refuse it.
"""

from __future__ import annotations

import datetime
import json
import re
from typing import Any

import pytest
from eval_studio_client.api.models.rpc_status import RpcStatus
from eval_studio_client.api.models.v1_operation import V1Operation as DocumentedV1Operation
from factories import DOCUMENTED_OUTPUT_ONLY_KEYS, make_failed, make_running, make_succeeded
from google.protobuf import duration_pb2, timestamp_pb2
from hypothesis import given, settings
from hypothesis import strategies as st

from v1op_pb import ConversionError, Operation, V1Operation

UTC = datetime.timezone.utc
TYPE_PREFIX = "type.googleapis.com/"
ERROR_INFO_URL = TYPE_PREFIX + "google.rpc.ErrorInfo"
STRING_FIELDS = ["name", "creator", "updater", "deleter"]
TIME_FIELDS = ["create_time", "update_time", "delete_time", "seen_by_creator_time"]
OUTPUT_ONLY_KEYS = sorted(DOCUMENTED_OUTPUT_ONLY_KEYS)
REQUEST_KEYS = ["metadata", "done", "error", "response"]
MIN_SECONDS = -62135596800
MAX_SECONDS = 253402300799

# Inputs already in canonical proto3 JSON form (so that ours, which normalises, writes
# them back unchanged), each exercising a different part of the documented shape.
HAND_WRITTEN = {
    "empty": {},
    "running": {
        "name": "operations/a",
        "createTime": "2026-01-01T00:00:00.999999999Z",
        "creator": "users/ada",
        "updateTime": "2026-01-01T02:00:00.1+02:00",
        "metadata": {
            "@type": TYPE_PREFIX + "v1op.example.v1.EvaluationProgress",
            "progress": 0.5,
            "itemsDone": "9007199254740993",
        },
    },
    "failed": {
        "done": True,
        "error": {
            "code": 5,
            "message": "not found",
            "details": [
                {"@type": ERROR_INFO_URL, "reason": "R", "domain": "d", "metadata": {"k": "v"}},
                {"@type": TYPE_PREFIX + "google.rpc.RetryInfo", "retryDelay": "1.500s"},
            ],
        },
    },
    "failed-bare-code": {"done": True, "error": {"code": -7}},
    "succeeded-duration": {
        "done": True,
        "response": {"@type": TYPE_PREFIX + "google.protobuf.Duration", "value": "-0.000000001s"},
    },
    "struct-metadata": {
        "metadata": {
            "@type": TYPE_PREFIX + "google.protobuf.Struct",
            "value": {"a": [1.5, "x", None, True, {}], "": {"nested": []}},
        },
    },
    "timestamp-response": {
        "done": True,
        "response": {
            "@type": TYPE_PREFIX + "google.protobuf.Timestamp",
            "value": "0001-01-01T00:00:00Z",
        },
    },
    "empty-any-and-status": {"metadata": {}, "error": {}},
    "deleted": {
        "name": "operations/gone",
        "deleteTime": "9999-12-31T23:59:59.999999Z",
        "deleter": "services/reaper",
        "seenByCreatorTime": "2026-05-05T05:05:05-05:00",
        "updater": 'ünïcödé \u2028 "quoted"',
    },
}
HAND_WRITTEN_CASES = pytest.mark.parametrize(
    "text", [json.dumps(v) for v in HAND_WRITTEN.values()], ids=list(HAND_WRITTEN)
)
FACTORY_CASES = pytest.mark.parametrize(
    "text",
    [
        V1Operation.from_proto(make()).to_json()
        for make in (make_running, make_succeeded, make_failed)
    ],
    ids=["running", "succeeded", "failed"],
)


def make_documented(text: str) -> DocumentedV1Operation:
    return DocumentedV1Operation.from_json(text)


def truncate_to_microseconds(value: datetime.datetime | None) -> datetime.datetime | None:
    """Ours as a plain datetime, its nanoseconds cut to microseconds as the documented one."""
    if value is None:
        return None
    return datetime.datetime(
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.nanosecond // 1000,
        tzinfo=value.tzinfo,
    )


def assert_request_fields_agree(text: str) -> None:
    documented = make_documented(text).to_dict()
    ours = V1Operation.from_json(text).to_dict(omit_output_only=True)

    assert set(documented) <= set(REQUEST_KEYS)
    assert ours == documented


def assert_output_only_attributes_agree(text: str) -> None:
    documented = make_documented(text)
    ours = V1Operation.from_json(text)

    for field in STRING_FIELDS:
        assert getattr(ours, field) == getattr(documented, field), field
    for field in TIME_FIELDS:
        expected = getattr(documented, field)
        assert truncate_to_microseconds(getattr(ours, field)) == expected, field


# --- a hypothesis strategy over the documented fields, in canonical form ------------------

texts = st.text(min_size=1, max_size=12)
finite_floats = st.floats(allow_nan=False, allow_infinity=False)


@st.composite
def rfc3339_texts(draw: st.DrawFn) -> str:
    """A time of microsecond precision, written in UTC or with an offset."""
    moment = draw(
        st.datetimes(
            min_value=datetime.datetime(1, 1, 2),
            max_value=datetime.datetime(9999, 12, 30),
            timezones=st.just(UTC),
        )
    )
    minutes = draw(st.integers(-(24 * 60 - 1), 24 * 60 - 1))
    shown = moment.astimezone(datetime.timezone(datetime.timedelta(minutes=minutes)))
    return shown.isoformat().replace("+00:00", draw(st.sampled_from(["Z", "+00:00"])))


def optional(**fields: st.SearchStrategy) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


durations = st.builds(
    lambda seconds, nanos, negative: duration_pb2.Duration(
        seconds=-seconds if negative else seconds, nanos=-nanos if negative else nanos
    ).ToJsonString(),
    st.integers(0, 315576000000),
    st.integers(0, 999_999_999),
    st.booleans(),
)
timestamps = st.builds(
    lambda seconds, nanos: timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos).ToJsonString(),
    st.integers(MIN_SECONDS, MAX_SECONDS),
    st.integers(0, 999_999_999),
)
json_values = st.recursive(
    st.none() | st.booleans() | finite_floats | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
non_zero_int64s = st.integers(-(2**63), 2**63 - 1).filter(bool).map(str)


def well_known(name: str, values: st.SearchStrategy) -> st.SearchStrategy[dict[str, Any]]:
    return values.map(
        lambda value: {"@type": f"{TYPE_PREFIX}google.protobuf.{name}", "value": value}
    )


def typed(full_name: str, fields: st.SearchStrategy) -> st.SearchStrategy[dict[str, Any]]:
    return fields.map(lambda body: {"@type": TYPE_PREFIX + full_name, **body})


anys = st.one_of(
    st.just({}),
    well_known("Duration", durations),
    well_known("Timestamp", timestamps),
    well_known("Struct", st.dictionaries(st.text(max_size=5), json_values, max_size=3)),
    well_known("Value", json_values),
    well_known("StringValue", st.text(max_size=8)),
    well_known("Int64Value", st.integers(-(2**63), 2**63 - 1).map(str)),
    typed(
        "google.rpc.ErrorInfo",
        optional(reason=texts, domain=texts, metadata=st.dictionaries(texts, texts, min_size=1)),
    ),
    typed("google.rpc.LocalizedMessage", optional(locale=texts, message=texts)),
    typed(
        "v1op.example.v1.EvaluationProgress",
        optional(
            progress=finite_floats.filter(bool),
            message=texts,
            itemsDone=non_zero_int64s,
            itemsTotal=non_zero_int64s,
            startedAt=timestamps,
        ),
    ),
)
statuses = optional(
    code=st.integers(-(2**31), 2**31 - 1).filter(bool),
    message=texts,
    details=st.lists(anys, min_size=1, max_size=3),
)


@st.composite
def operation_texts(draw: st.DrawFn) -> str:
    doc = draw(
        optional(
            name=texts,
            createTime=rfc3339_texts(),
            creator=texts,
            updateTime=rfc3339_texts(),
            updater=texts,
            deleteTime=rfc3339_texts(),
            deleter=texts,
            metadata=anys,
            done=st.just(True),
            seenByCreatorTime=rfc3339_texts(),
        )
    )
    outcome = draw(st.sampled_from(["none", "error", "response"]))
    if outcome == "error":
        doc["error"] = draw(statuses)
    elif outcome == "response":
        doc["response"] = draw(anys)
    return json.dumps(doc, ensure_ascii=draw(st.booleans()))


# --- agreement on the fields the documented client models -------------------------------


@HAND_WRITTEN_CASES
def test_request_fields_agree_on_hand_written_input(text):
    assert_request_fields_agree(text)


@FACTORY_CASES
def test_request_fields_agree_on_factory_output(text):
    assert_request_fields_agree(text)


@HAND_WRITTEN_CASES
def test_output_only_attributes_agree_on_hand_written_input(text):
    assert_output_only_attributes_agree(text)


@FACTORY_CASES
def test_output_only_attributes_agree_on_factory_output(text):
    assert_output_only_attributes_agree(text)


@settings(max_examples=100, deadline=None)
@given(text=operation_texts())
def test_request_fields_agree_on_generated_input(text):
    assert_request_fields_agree(text)


@settings(max_examples=100, deadline=None)
@given(text=operation_texts())
def test_output_only_attributes_agree_on_generated_input(text):
    assert_output_only_attributes_agree(text)


@settings(max_examples=50, deadline=None)
@given(text=operation_texts())
def test_documented_time_values_are_accepted_by_our_setters(text):
    # Values read by the documented client can be handed to ours as they are.
    documented = make_documented(text)
    ours = V1Operation.from_json(text)

    for field in TIME_FIELDS:
        value = getattr(documented, field)
        copied = V1Operation(**{field: value})
        assert getattr(copied, field) == value
        if value is not None:
            assert getattr(copied, field) == truncate_to_microseconds(getattr(ours, field))


@FACTORY_CASES
def test_request_body_from_documented_client_reads_back_as_ours_without_output_only(text):
    # The documented client's request body is ours with the output-only fields cleared.
    ours = V1Operation.from_json(make_documented(text).to_json())

    expected = V1Operation.from_json(text)
    for field in [*STRING_FIELDS, *TIME_FIELDS]:
        setattr(expected, field, None)
    assert ours == expected


@pytest.mark.parametrize(
    "value",
    [[], {}, [[]], {"a": {}}, {"a": [[], {}]}],
    ids=["[]", "{}", "[[]]", "a-{}", "a-[[],{}]"],
)
def test_empty_arrays_and_objects_in_a_value_agree(value):
    # An empty array or object is a value in its own right, not null.
    text = json.dumps(
        {"metadata": {"@type": TYPE_PREFIX + "google.protobuf.Value", "value": value}}
    )

    assert make_documented(text).to_dict()["metadata"]["value"] == value
    assert V1Operation.from_json(text).to_dict()["metadata"]["value"] == value


# --- the documented client's losses, kept by ours ---------------------------------------

ALL_FIELDS = {
    "name": "operations/x",
    "createTime": "2026-01-01T00:00:00.123456789Z",
    "creator": "users/a",
    "updateTime": "2026-01-02T00:00:00Z",
    "updater": "users/b",
    "deleteTime": "2026-01-03T00:00:00.500Z",
    "deleter": "users/c",
    "done": True,
    "response": {"@type": TYPE_PREFIX + "google.protobuf.StringValue", "value": "ok"},
    "seenByCreatorTime": "2026-01-04T00:00:00.000001Z",
}


def test_documented_to_dict_drops_the_output_only_fields_ours_keeps_them():
    text = json.dumps(ALL_FIELDS)

    documented = make_documented(text)
    assert documented.name == "operations/x"
    assert not set(OUTPUT_ONLY_KEYS) & set(documented.to_dict())
    assert make_documented(documented.to_json()).name is None

    ours = V1Operation.from_json(text)
    assert ours.to_dict() == ALL_FIELDS
    assert json.loads(ours.to_json()) == ALL_FIELDS
    assert V1Operation.from_json(ours.to_json()).name == "operations/x"


def test_documented_from_dict_ignores_snake_case_ours_reads_it():
    data = {"create_time": "2026-01-01T00:00:00.123456789Z", "seen_by_creator_time": None}

    assert DocumentedV1Operation.from_dict(data).create_time is None

    ours = V1Operation.from_dict(data)
    assert ours.create_time == datetime.datetime(2026, 1, 1, 0, 0, 0, 123_456, tzinfo=UTC)
    assert ours.create_time.nanosecond == 123_456_789


def test_documented_client_cuts_nanoseconds_ours_keeps_them():
    text = '{"createTime": "2026-01-01T00:00:00.123456789Z"}'

    documented = make_documented(text)
    assert documented.create_time.microsecond == 123_456
    assert '"createTime":"2026-01-01T00:00:00.123456Z"' in documented.model_dump_json(by_alias=True)

    ours = V1Operation.from_json(text)
    assert ours.create_time.nanosecond == 123_456_789
    assert ours.to_json() == '{"createTime":"2026-01-01T00:00:00.123456789Z"}'


def test_documented_client_takes_yes_for_done_ours_refuses_it():
    text = '{"done": "yes"}'

    assert make_documented(text).done is True

    with pytest.raises(ConversionError, match=re.escape("$.done: ")) as info:
        V1Operation.from_json(text)
    assert info.value.path == "$.done"


@pytest.mark.parametrize(
    ("text", "second"),
    [
        ('{"done": true, "error": {"code": 5}, "response": {}}', "response"),
        ('{"done": true, "response": {}, "error": {"code": 5}}', "error"),
    ],
    ids=["error-first", "response-first"],
)
def test_documented_client_takes_error_and_response_ours_refuses_the_second(text, second):
    documented = make_documented(text)
    assert documented.error is not None
    assert documented.response is not None

    with pytest.raises(ConversionError, match=re.escape("at most one may be set")) as info:
        V1Operation.from_json(text)
    assert info.value.path == f"$.{second}"


def test_documented_client_leaves_any_unchecked_ours_checks_the_type():
    text = json.dumps({"error": {"code": 3, "details": [{"@type": ERROR_INFO_URL, "reason": 5}]}})

    documented = make_documented(text)
    assert documented.error.details[0].additional_properties == {"reason": 5}
    assert documented.to_dict()["error"]["details"] == [{"@type": ERROR_INFO_URL, "reason": 5}]

    with pytest.raises(ConversionError) as info:
        V1Operation.from_json(text)
    assert info.value.path == "$.error.details[0].reason"


# --- models built by hand on either side ------------------------------------------------


def test_hand_built_documented_model_crosses_both_ways():
    documented = DocumentedV1Operation(done=True, error=RpcStatus(code=5, message="x"))

    ours = V1Operation.from_json(documented.to_json())
    assert ours.done is True
    assert ours.error.code == 5
    assert ours.error.message == "x"
    assert ours.response is None
    assert ours.to_proto() == Operation(done=True, error={"code": 5, "message": "x"})

    back = DocumentedV1Operation.from_json(ours.to_json(omit_output_only=True))
    assert back == documented
    assert back.to_dict() == documented.to_dict()
