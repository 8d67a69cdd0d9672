"""A datetime that keeps the nanoseconds of a protobuf Timestamp."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from google.protobuf import timestamp_pb2

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self from Python 3.11

__all__ = ["DatetimeWithNanoseconds"]

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


class DatetimeWithNanoseconds(datetime.datetime):
    """A datetime with nanosecond precision (``nanosecond``, 0..999_999_999).

    It is a ``datetime`` everywhere one is expected; ``microsecond`` holds the truncated
    value, ``nanosecond`` the whole fraction. ``replace``, ``astimezone``, copying, pickling
    and ``isoformat`` keep the nanoseconds; arithmetic gives a plain datetime, as
    google-api-core's class of the same name (whose names and methods this follows) does.
    """

    __slots__ = ("_nanosecond",)
    _nanosecond: int

    def __new__(cls, *args: Any, nanosecond: int | None = None, **kwargs: Any) -> Self:
        if nanosecond is not None:
            if "microsecond" in kwargs or len(args) > 6:
                raise TypeError("specify microsecond or nanosecond, not both")
            if not 0 <= nanosecond <= 999_999_999:
                raise ValueError(f"nanosecond {nanosecond} is outside 0..999999999")
            kwargs["microsecond"] = nanosecond // 1000
        self = super().__new__(cls, *args, **kwargs)
        self._nanosecond = self.microsecond * 1000 if nanosecond is None else nanosecond
        return self

    @property
    def nanosecond(self) -> int:
        # Instances that datetime's C code builds without __new__ have no _nanosecond.
        nanosecond: int | None = getattr(self, "_nanosecond", None)
        if nanosecond is None or nanosecond // 1000 != self.microsecond:
            return self.microsecond * 1000
        return nanosecond

    @classmethod
    def from_datetime(
        cls, value: datetime.datetime, nanosecond: int | None = None
    ) -> DatetimeWithNanoseconds:
        """The same instant and zone; ``nanosecond`` defaults to the microseconds'."""
        return cls(
            value.year,
            value.month,
            value.day,
            value.hour,
            value.minute,
            value.second,
            nanosecond=value.microsecond * 1000 if nanosecond is None else nanosecond,
            tzinfo=value.tzinfo,
            fold=value.fold,
        )

    @classmethod
    def from_timestamp_pb(cls, stamp: timestamp_pb2.Timestamp) -> DatetimeWithNanoseconds:
        """The instant of a Timestamp, in UTC, exact to the nanosecond."""
        return cls.from_datetime(_EPOCH + datetime.timedelta(seconds=stamp.seconds), stamp.nanos)

    def timestamp_pb(self) -> timestamp_pb2.Timestamp:
        return timestamp_pb(self)

    def rfc3339(self) -> str:
        """RFC 3339 in UTC with 0, 3, 6 or 9 fractional digits, as proto3 JSON writes it."""
        return self.timestamp_pb().ToJsonString()

    def replace(self, **changes: Any) -> DatetimeWithNanoseconds:  # type: ignore[override]
        nanosecond = changes.pop("nanosecond", None)
        if nanosecond is not None and "microsecond" in changes:
            raise TypeError("specify microsecond or nanosecond, not both")
        if nanosecond is None and "microsecond" not in changes:
            nanosecond = self.nanosecond
        if nanosecond is not None:
            changes["microsecond"] = nanosecond // 1000
        plain = datetime.datetime.replace(self._plain(), **changes)
        return type(self).from_datetime(plain, nanosecond)

    def astimezone(self, tz: datetime.tzinfo | None = None) -> DatetimeWithNanoseconds:
        return type(self).from_datetime(self._plain().astimezone(tz), self.nanosecond)

    def isoformat(self, sep: str = "T", timespec: str = "auto") -> str:
        text = self._plain().isoformat(sep, timespec)
        extra = self.nanosecond % 1000
        if timespec == "auto" and extra:
            # The six microsecond digits are followed by the three below them.
            head, dot, rest = text.partition(".")
            text = f"{head}{dot}{rest[:6]}{extra:03d}{rest[6:]}"
        return text

    def __str__(self) -> str:
        return self.isoformat(" ")

    def __repr__(self) -> str:
        # isoformat, not rfc3339: it keeps the zone, and works for naive values too.
        return f"{type(self).__name__}({self.isoformat()!r})"

    def __reduce_ex__(self, protocol: Any) -> Any:  # datetime's own would drop nanoseconds
        fields = (self.year, self.month, self.day, self.hour, self.minute, self.second)
        return (_rebuild, (fields, self.nanosecond, self.tzinfo, self.fold))

    def _plain(self) -> datetime.datetime:
        return datetime.datetime(
            self.year,
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
            self.microsecond,
            tzinfo=self.tzinfo,
            fold=self.fold,
        )


def _rebuild(
    fields: tuple[int, ...], nanosecond: int, tzinfo: datetime.tzinfo | None, fold: int
) -> DatetimeWithNanoseconds:
    return DatetimeWithNanoseconds(*fields, nanosecond=nanosecond, tzinfo=tzinfo, fold=fold)


def timestamp_pb(value: datetime.datetime) -> timestamp_pb2.Timestamp:
    """A Timestamp for an aware datetime, exact to the nanosecond for DatetimeWithNanoseconds.

    A naive datetime is refused: reading it as UTC or as local time would be a guess.
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"datetime {value.isoformat()} has no time zone; give an aware datetime")
    delta = value - _EPOCH
    seconds = delta.days * 86400 + delta.seconds
    if isinstance(value, DatetimeWithNanoseconds):
        nanos = value.nanosecond
    else:
        nanos = value.microsecond * 1000
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)
