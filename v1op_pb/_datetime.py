"""A datetime that keeps the nanoseconds of a protobuf Timestamp."""

from __future__ import annotations

import datetime

from google.protobuf import timestamp_pb2

__all__ = ["DatetimeWithNanoseconds"]

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


class DatetimeWithNanoseconds(datetime.datetime):
    """A UTC datetime with nanosecond precision (``nanosecond``, 0..999_999_999).

    It is a ``datetime`` everywhere one is expected; ``microsecond`` holds the truncated
    value, ``nanosecond`` the whole fraction, and conversion back to a Timestamp is exact.
    The name and methods follow google-api-core's class of the same name.
    """

    __slots__ = ("_nanosecond",)
    _nanosecond: int

    def __new__(cls, *args, nanosecond: int = 0, **kwargs) -> DatetimeWithNanoseconds:
        if nanosecond:
            if kwargs.get("microsecond") or (len(args) > 6 and args[6]):
                raise TypeError("specify microsecond or nanosecond, not both")
            if not 0 <= nanosecond <= 999_999_999:
                raise ValueError(f"nanosecond {nanosecond} is outside 0..999999999")
            kwargs["microsecond"] = nanosecond // 1000
        self = super().__new__(cls, *args, **kwargs)
        self._nanosecond = nanosecond or self.microsecond * 1000
        return self

    @property
    def nanosecond(self) -> int:
        return self._nanosecond

    @classmethod
    def from_timestamp_pb(cls, stamp: timestamp_pb2.Timestamp) -> DatetimeWithNanoseconds:
        plain = _EPOCH + datetime.timedelta(seconds=stamp.seconds)
        return cls(
            plain.year,
            plain.month,
            plain.day,
            plain.hour,
            plain.minute,
            plain.second,
            nanosecond=stamp.nanos,
            tzinfo=datetime.timezone.utc,
        )

    def timestamp_pb(self) -> timestamp_pb2.Timestamp:
        return timestamp_pb(self)

    def rfc3339(self) -> str:
        return self.timestamp_pb().ToJsonString()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.rfc3339()!r})"

    def __reduce_ex__(self, protocol):  # datetime's own pickling would drop the nanoseconds
        return (_rebuild, (self.timestamp_pb().SerializeToString(),))


def _rebuild(data: bytes) -> DatetimeWithNanoseconds:
    return DatetimeWithNanoseconds.from_timestamp_pb(timestamp_pb2.Timestamp.FromString(data))


def timestamp_pb(value: datetime.datetime) -> timestamp_pb2.Timestamp:
    """A Timestamp for an aware datetime, exact to the nanosecond for DatetimeWithNanoseconds.

    A naive datetime is refused: reading it as UTC or as local time would be a guess.
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"datetime {value.isoformat()} has no time zone; give an aware datetime")
    delta = value - _EPOCH
    seconds = delta.days * 86400 + delta.seconds
    nanos = (
        value.nanosecond if isinstance(value, DatetimeWithNanoseconds) else value.microsecond * 1000
    )
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)
