"""DatetimeWithNanoseconds: a datetime that must carry a Timestamp's nanoseconds unchanged."""

from __future__ import annotations

import copy
import datetime
import pickle
import re

import pytest
from google.protobuf import timestamp_pb2
from hypothesis import given, settings
from hypothesis import strategies as st

from v1op_pb import DatetimeWithNanoseconds
from v1op_pb._datetime import timestamp_pb

UTC = datetime.timezone.utc
PLUS_TWO = datetime.timezone(datetime.timedelta(hours=2))
MIN_SECONDS = -62135596800  # 0001-01-01T00:00:00Z
MAX_SECONDS = 253402300799  # 9999-12-31T23:59:59Z
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=UTC)


def make_timestamp(seconds: int, nanos: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)


def make_dt(nanosecond: int = 123_456_789, tzinfo=UTC) -> DatetimeWithNanoseconds:
    return DatetimeWithNanoseconds(2026, 11, 20, 9, 15, 2, nanosecond=nanosecond, tzinfo=tzinfo)


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        ("0001-01-01T00:00:00Z", (1, 1, 1, 0, 0, 0, 0)),
        ("9999-12-31T23:59:59.999999999Z", (9999, 12, 31, 23, 59, 59, 999_999_999)),
    ],
)
def test_range_ends_convert_exactly(text, fields):
    stamp = timestamp_pb2.Timestamp()
    stamp.FromJsonString(text)

    dt = DatetimeWithNanoseconds.from_timestamp_pb(stamp)

    *date_time, nanos = fields
    assert (dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second) == tuple(date_time)
    assert dt.nanosecond == nanos
    assert dt.utcoffset() == datetime.timedelta(0)
    assert dt.timestamp_pb() == stamp
    assert dt.rfc3339() == text


@settings(max_examples=100, deadline=None)
@given(
    seconds=st.integers(MIN_SECONDS, MAX_SECONDS),
    nanos=st.integers(0, 999_999_999),
)
def test_timestamp_round_trip_is_exact(seconds, nanos):
    stamp = make_timestamp(seconds, nanos)

    dt = DatetimeWithNanoseconds.from_timestamp_pb(stamp)

    assert dt.timestamp_pb() == stamp
    assert timestamp_pb(dt) == stamp
    assert dt.rfc3339() == stamp.ToJsonString()
    # The datetime part must be the same instant as an independently computed datetime,
    # so that code treating it as a plain datetime sees the right value.
    expected = EPOCH + datetime.timedelta(seconds=seconds, microseconds=nanos // 1000)
    assert datetime.datetime.__eq__(dt, expected)
    assert dt.microsecond == nanos // 1000


@pytest.mark.parametrize(
    ("nanos", "text"),
    [
        (0, "2026-11-20T09:15:02Z"),
        (500_000_000, "2026-11-20T09:15:02.500Z"),
        (123_456_000, "2026-11-20T09:15:02.123456Z"),
        (123_456_789, "2026-11-20T09:15:02.123456789Z"),
        (1, "2026-11-20T09:15:02.000000001Z"),
    ],
)
def test_rfc3339_uses_0_3_6_or_9_digits(nanos, text):
    assert make_dt(nanos).rfc3339() == text


def test_rfc3339_is_in_utc_for_an_offset_datetime():
    assert make_dt(tzinfo=PLUS_TWO).rfc3339() == "2026-11-20T07:15:02.123456789Z"


@pytest.mark.parametrize("nanos", [0, 1, 999, 1000, 123_456_789, 999_999_999])
def test_microsecond_is_nanosecond_truncated(nanos):
    dt = make_dt(nanos)

    assert dt.nanosecond == nanos
    assert dt.microsecond == nanos // 1000


def test_without_nanosecond_it_follows_microsecond():
    dt = DatetimeWithNanoseconds(2026, 1, 2, microsecond=654_321, tzinfo=UTC)

    assert dt.nanosecond == 654_321_000


def test_is_a_datetime():
    dt = make_dt()

    assert isinstance(dt, datetime.datetime)
    assert dt == datetime.datetime(2026, 11, 20, 9, 15, 2, 123_456, tzinfo=UTC)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"microsecond": 1, "nanosecond": 1500},
        {"microsecond": 999_999, "nanosecond": 1},
    ],
)
def test_microsecond_and_nanosecond_together_are_refused(kwargs):
    with pytest.raises(TypeError, match=re.escape("specify microsecond or nanosecond, not both")):
        DatetimeWithNanoseconds(2026, 1, 2, tzinfo=UTC, **kwargs)


def test_positional_microsecond_and_nanosecond_are_refused():
    with pytest.raises(TypeError, match=re.escape("not both")):
        DatetimeWithNanoseconds(2026, 1, 2, 0, 0, 0, 7, nanosecond=1500, tzinfo=UTC)


@pytest.mark.parametrize("nanos", [-1, 1_000_000_000])
def test_nanosecond_out_of_range_is_refused(nanos):
    with pytest.raises(ValueError, match=re.escape(f"nanosecond {nanos} is outside")):
        make_dt(nanos)


DUPLICATES = pytest.mark.parametrize(
    "duplicate",
    [
        copy.copy,
        copy.deepcopy,
        lambda dt: pickle.loads(pickle.dumps(dt)),
        lambda dt: pickle.loads(pickle.dumps(dt, protocol=0)),
    ],
    ids=["copy", "deepcopy", "pickle", "pickle-protocol-0"],
)


@pytest.mark.parametrize("tzinfo", [UTC, PLUS_TWO], ids=["utc", "plus-two"])
@DUPLICATES
def test_copies_keep_nanoseconds(duplicate, tzinfo):
    dt = make_dt(tzinfo=tzinfo)

    twin = duplicate(dt)

    assert type(twin) is DatetimeWithNanoseconds
    assert twin.nanosecond == 123_456_789
    assert twin == dt
    assert twin.timestamp_pb() == dt.timestamp_pb()


@DUPLICATES
def test_copies_keep_the_time_zone(duplicate):
    # A copy must read the same wall-clock time as the original, not just the same instant.
    dt = make_dt(tzinfo=PLUS_TWO)

    twin = duplicate(dt)

    assert twin.utcoffset() == datetime.timedelta(hours=2)
    assert (twin.hour, twin.nanosecond) == (9, 123_456_789)


@DUPLICATES
def test_copies_of_a_naive_instance_work(duplicate):
    # The constructor accepts a naive value, so copying it must not fail.
    dt = make_dt(tzinfo=None)

    twin = duplicate(dt)

    assert twin.tzinfo is None
    assert twin.nanosecond == 123_456_789
    assert twin == dt


def test_repr_of_a_naive_instance_does_not_raise():
    assert "2026" in repr(make_dt(tzinfo=None))


def test_repr_shows_all_digits():
    assert repr(make_dt()) == "DatetimeWithNanoseconds('2026-11-20T09:15:02.123456789+00:00')"


def test_replace_gives_a_usable_instance_keeping_nanoseconds():
    # datetime.replace builds the subclass without __new__; nanosecond must still be there.
    moved = make_dt().replace(minute=16)

    assert moved.minute == 16
    assert moved.nanosecond == 123_456_789
    assert moved.rfc3339() == "2026-11-20T09:16:02.123456789Z"


def test_astimezone_keeps_nanoseconds():
    moved = make_dt().astimezone(PLUS_TWO)

    assert moved.hour == 11
    assert moved.nanosecond == 123_456_789
    assert moved.timestamp_pb() == make_dt().timestamp_pb()


@pytest.mark.parametrize(
    "naive",
    [datetime.datetime(2026, 1, 2, 3, 4, 5), make_dt(tzinfo=None)],
    ids=["datetime", "DatetimeWithNanoseconds"],
)
def test_timestamp_pb_refuses_a_naive_datetime(naive):
    with pytest.raises(ValueError, match=re.escape("has no time zone; give an aware datetime")):
        timestamp_pb(naive)


def test_timestamp_pb_of_a_plain_datetime_uses_its_offset():
    plain = datetime.datetime(1970, 1, 1, 2, 0, 0, 250_000, tzinfo=PLUS_TWO)

    assert timestamp_pb(plain) == make_timestamp(0, 250_000_000)


def test_timestamp_pb_before_the_epoch_keeps_nanos_positive():
    stamp = make_timestamp(-1, 999_999_999)

    dt = DatetimeWithNanoseconds.from_timestamp_pb(stamp)

    assert dt.rfc3339() == "1969-12-31T23:59:59.999999999Z"
    assert timestamp_pb(dt) == stamp
