"""The well-known types whose JSON form is not an object of their fields.

One small unit per type, looked up by full message name (as json_format's WKT table is).
A unit decodes a JSON value into a message and encodes a message into a JSON value; the
codec passed in handles what nests inside an Any. Units take the same arguments as the
compiled functions of ``decode`` and ``encode`` and check the nesting depth themselves, so
that compiled code calls them directly; Struct, Value and ListValue call each other directly
too.
"""

from __future__ import annotations

import datetime
import math
import re
from typing import Any, NamedTuple, Protocol

from google.protobuf.any_pb2 import Any as AnyMessage
from google.protobuf.duration_pb2 import Duration
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.message import DecodeError, EncodeError, Message
from google.protobuf.struct_pb2 import NULL_VALUE, ListValue, Struct, Value
from google.protobuf.timestamp_pb2 import Timestamp

from .._errors import ConversionError, excerpt
from .._registry import UnknownTypeError, type_name_of
from .compile import CodecLike
from .encode import encode_repeated_messages
from .jsontext import MAX_DEPTH, too_deep
from .scalars import SCALAR_DECODERS, SCALAR_ENCODERS, decode_string, describe, expect_object

# Timestamp range of the proto3 JSON mapping: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
_MIN_SECONDS = -62135596800
_MAX_SECONDS = 253402300799
_MAX_DURATION_SECONDS = 315576000000
_EPOCH_ORDINAL = datetime.date(1970, 1, 1).toordinal()
_RFC3339 = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]{1,9}))?(?:Z|([+-])([0-9]{2}):([0-9]{2}))\Z"
)
_DURATION = re.compile(r"(-)?([0-9]+)(?:\.([0-9]{1,9}))?s\Z")


class Unit(NamedTuple):
    decode: Any  # (codec, message, json value, depth) -> None, fills the message
    encode: Any  # (codec, message, depth) -> JSON value


_INFINITY = math.inf


class _Wrapper(Protocol):
    """BoolValue, Int64Value, StringValue, ...: the type of ``value`` is the wrapper's."""

    value: Any


# --- Timestamp ---------------------------------------------------------------------------


def _decode_timestamp(codec: CodecLike, message: Timestamp, value: Any, depth: int) -> None:
    if not isinstance(value, str):
        raise ConversionError(f"expected an RFC 3339 timestamp string, got {describe(value)}")
    match = _RFC3339.match(value)
    if match is None:
        raise ConversionError(
            "expected an RFC 3339 timestamp such as 2024-05-01T12:30:00.123456789Z, "
            f"got {excerpt(value)}"
        )
    date, hour, minute, second, fraction, sign, off_h, off_m = match.groups()
    days = _DAYS.get(date)
    if days is None:
        days = _days_of(date, value)
    if hour > "23" or minute > "59" or second > "59":  # two digits each: text order works
        raise ConversionError(f"invalid time of day in timestamp {excerpt(value)}")
    seconds = days * 86400 + int(hour) * 3600 + int(minute) * 60 + int(second)
    if sign is not None:
        if off_h > "23" or off_m > "59":  # two digits each, so text order is number order
            raise ConversionError(f"invalid UTC offset in timestamp {excerpt(value)}")
        offset = int(off_h) * 3600 + int(off_m) * 60
        seconds -= offset if sign == "+" else -offset
    if not _MIN_SECONDS <= seconds <= _MAX_SECONDS:
        raise ConversionError(
            f"timestamp {excerpt(value)} is outside 0001-01-01T00:00:00Z..9999-12-31T23:59:59Z"
        )
    message.seconds = seconds
    message.nanos = int(fraction) * _FRACTION_SCALE[len(fraction)] if fraction else 0


# Day numbers (since 1970-01-01) of the dates read, and the text of the days written: a dict
# lookup is cheaper than datetime arithmetic, and the timestamps of a batch fall on few days.
# Each is cleared when it grows past the limit.
_DAYS: dict[str, int] = {}
_DATES: dict[int, str] = {}
_CACHE_LIMIT = 4096


def _days_of(date: str, value: str) -> int:
    try:
        days = datetime.date.fromisoformat(date).toordinal() - _EPOCH_ORDINAL
    except ValueError as e:
        raise ConversionError(f"invalid date in timestamp {excerpt(value)}: {e}") from e
    if len(_DAYS) >= _CACHE_LIMIT:
        _DAYS.clear()
    _DAYS[date] = days
    return days


def _date_text(days: int) -> str:
    text = datetime.date.fromordinal(days + _EPOCH_ORDINAL).isoformat()
    if len(_DATES) >= _CACHE_LIMIT:
        _DATES.clear()
    _DATES[days] = text
    return text


def _encode_timestamp(codec: CodecLike, message: Timestamp, depth: int) -> str:
    if depth > MAX_DEPTH:
        raise too_deep()
    seconds, nanos = message.seconds, message.nanos
    if not _MIN_SECONDS <= seconds <= _MAX_SECONDS or not 0 <= nanos <= 999_999_999:
        raise ConversionError(
            f"Timestamp seconds={seconds} nanos={nanos} is outside the range JSON can carry "
            "(0001-01-01T00:00:00Z..9999-12-31T23:59:59.999999999Z)"
        )
    days = seconds // 86400
    date = _DATES.get(days)
    if date is None:
        date = _date_text(days)
    rest = seconds - days * 86400
    hours = rest // 3600
    rest -= hours * 3600
    minutes = rest // 60
    clock = _TWO_DIGITS[hours] + ":" + _TWO_DIGITS[minutes] + ":" + _TWO_DIGITS[rest - minutes * 60]
    # 0, 3, 6 or 9 fractional digits, as json_format writes them.
    if not nanos:
        return date + "T" + clock + "Z"
    if not nanos % 1_000_000:
        return f"{date}T{clock}.{nanos // 1_000_000:03d}Z"
    if not nanos % 1000:
        return f"{date}T{clock}.{nanos // 1000:06d}Z"
    return f"{date}T{clock}.{nanos:09d}Z"


_TWO_DIGITS = [f"{n:02d}" for n in range(60)]
_FRACTION_SCALE = [10 ** (9 - digits) for digits in range(10)]  # nanoseconds per last digit


# --- Duration ----------------------------------------------------------------------------


def _decode_duration(codec: CodecLike, message: Duration, value: Any, depth: int) -> None:
    if not isinstance(value, str):
        raise ConversionError(f'expected a duration string such as "1.5s", got {describe(value)}')
    match = _DURATION.match(value)
    if match is None:
        raise ConversionError(
            'expected a duration such as "1.5s" (at most 9 fractional digits), '
            f"got {excerpt(value)}"
        )
    negative, whole, fraction = match.groups()
    seconds = int(whole)
    nanos = int(fraction.ljust(9, "0")) if fraction else 0
    if seconds > _MAX_DURATION_SECONDS:
        raise ConversionError(f"duration {excerpt(value)} is outside ±{_MAX_DURATION_SECONDS}s")
    message.seconds = -seconds if negative else seconds
    message.nanos = -nanos if negative else nanos


def _encode_duration(codec: CodecLike, message: Duration, depth: int) -> str:
    if depth > MAX_DEPTH:
        raise too_deep()
    seconds, nanos = message.seconds, message.nanos
    if (
        abs(seconds) > _MAX_DURATION_SECONDS
        or abs(nanos) > 999_999_999
        or (seconds > 0 and nanos < 0)
        or (seconds < 0 and nanos > 0)
    ):
        raise ConversionError(
            f"Duration seconds={seconds} nanos={nanos} is not a valid duration (±"
            f"{_MAX_DURATION_SECONDS}s, nanos of the same sign and under one second)"
        )
    return message.ToJsonString()


# --- FieldMask ---------------------------------------------------------------------------


def _decode_field_mask(codec: CodecLike, message: FieldMask, value: Any, depth: int) -> None:
    if not isinstance(value, str):
        raise ConversionError(
            f'expected a field mask string such as "a,b.c", got {describe(value)}'
        )
    try:
        message.FromJsonString(value)
    except ValueError as e:
        raise ConversionError(f"invalid field mask {excerpt(value)}: {e}") from e


def _encode_field_mask(codec: CodecLike, message: FieldMask, depth: int) -> str:
    if depth > MAX_DEPTH:
        raise too_deep()
    paths = list(message.paths)
    try:
        text = message.ToJsonString()
    except ValueError as e:
        raise ConversionError(f"FieldMask has a path with no JSON form: {e}") from e
    check = type(message)()
    check.FromJsonString(text)
    if list(check.paths) != paths:
        # e.g. the path "a,b" prints as "a,b", which reads back as two paths.
        raise ConversionError(
            f"FieldMask paths {excerpt(paths)} have no lossless JSON form (it would read back as "
            f"{excerpt(list(check.paths))})"
        )
    return text


# --- Struct, Value, ListValue ------------------------------------------------------------
#
# Depth counts as the binary decoder counts it: a Struct's value sits in a map entry (+2),
# a ListValue's value and a Value's struct or list one level down (+1). What reads here must
# also read back from binary.


def _decode_struct(codec: CodecLike, message: Struct, value: Any, depth: int) -> None:
    fields = message.fields
    obj = value if type(value) is dict else expect_object(value, "a Struct")
    deep = depth + 2 > MAX_DEPTH
    for key, item in obj.items():
        # ASCII strings inline: most values are short text.
        if type(item) is str and not deep and type(key) is str and key.isascii() and item.isascii():
            fields[key].string_value = item
            continue
        try:
            entry = fields[decode_string(key)]
            if deep:
                raise too_deep()
            _decode_value(codec, entry, item, depth + 2)
        except ConversionError as e:
            e.prepend(key)
            raise


def _encode_struct(codec: CodecLike, message: Struct, depth: int) -> dict[str, Any]:
    if depth > MAX_DEPTH:
        raise too_deep()
    # The checked encoding looks at every Struct, ListValue and Value: they encode one
    # another directly, not through the codec's (checking) encoder table.
    checked = codec.check_unknown
    if checked:
        codec.unknown_fields_in(message)
    fields = message.fields
    out: dict[str, Any] = {}
    # Keys sorted, as every map is written (compile._encode_map says why).
    for key in sorted(fields):  # items() of a protobuf map is the slow generic Mapping one
        item = fields[key]
        # Strings and numbers inline: most values are one or the other.
        kind = item.WhichOneof("kind")
        if kind == "string_value" and not checked:
            out[key] = item.string_value
            continue
        if kind == "number_value" and not checked:
            number = item.number_value
            if number - number == 0.0:  # finite
                out[key] = number
                continue
        try:
            out[key] = _encode_value(codec, item, depth + 2)
        except ConversionError as e:
            e.prepend(key)
            raise
    return out


def _decode_list_value(codec: CodecLike, message: ListValue, value: Any, depth: int) -> None:
    if not isinstance(value, list):
        raise ConversionError(f"expected a ListValue (a JSON array), got {describe(value)}")
    add = message.values.add
    for index, item in enumerate(value):
        try:
            if depth + 1 > MAX_DEPTH:
                raise too_deep()
            _decode_value(codec, add(), item, depth + 1)
        except ConversionError as e:
            e.prepend(index)
            raise


def _encode_list_value(codec: CodecLike, message: ListValue, depth: int) -> list[Any]:
    if depth > MAX_DEPTH:
        raise too_deep()
    if codec.check_unknown:
        codec.unknown_fields_in(message)
    return encode_repeated_messages(codec, message.values, _encode_value, depth)


def _decode_value(codec: CodecLike, message: Value, value: Any, depth: int) -> None:
    kind = type(value)
    if kind is str:
        message.string_value = value if value.isascii() else decode_string(value)
    elif kind is float:
        if value == _INFINITY or value == -_INFINITY:  # 1e400 reads as infinity, which JSON
            raise ConversionError(f"number {value} is out of the range of a double")  # can't write
        if value != value:  # only from_dict gets a NaN here; JSON could not write it back
            raise ConversionError("number nan has no JSON form (it would read back as a string)")
        message.number_value = value
    elif value is None:
        message.null_value = NULL_VALUE
    elif kind is bool:
        message.bool_value = value
    elif isinstance(value, (int, float)):
        try:
            number = float(value)
        except OverflowError as e:
            raise ConversionError(f"number {value} is out of the range of a double") from e
        if math.isinf(number):
            raise ConversionError(f"number {value} is out of the range of a double")
        if math.isnan(number):
            raise ConversionError("number nan has no JSON form (it would read back as a string)")
        message.number_value = number
    elif isinstance(value, dict):
        if depth + 1 > MAX_DEPTH:
            raise too_deep()
        # SetInParent first: decoding {} or [] touches nothing, and the kind must still be
        # a struct or a list, not unset (which reads as null).
        struct = message.struct_value
        struct.SetInParent()
        _decode_struct(codec, struct, value, depth + 1)
    elif isinstance(value, list):
        if depth + 1 > MAX_DEPTH:
            raise too_deep()
        values = message.list_value
        values.SetInParent()
        _decode_list_value(codec, values, value, depth + 1)
    else:
        raise ConversionError(f"expected a JSON value, got {describe(value)}")


def _encode_value(codec: CodecLike, message: Value, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise too_deep()
    if codec.check_unknown:
        codec.unknown_fields_in(message)
    kind = message.WhichOneof("kind")
    if kind == "string_value":
        return message.string_value
    if kind == "number_value":
        number = message.number_value
        if number - number != 0.0:
            raise ConversionError(
                f"Value.number_value {number} has no JSON form (it would read back as a string)"
            )
        return number
    if kind == "bool_value":
        return message.bool_value
    if kind == "struct_value":
        return _encode_struct(codec, message.struct_value, depth + 1)
    if kind == "list_value":
        return _encode_list_value(codec, message.list_value, depth + 1)
    if kind == "null_value" and message.null_value:
        # An enum number NullValue does not name (from binary or text): null would read
        # back as NULL_VALUE (0).
        raise ConversionError(
            f"Value.null_value {message.null_value} has no JSON form (null reads back as 0)"
        )
    return None  # null_value, or no kind at all


# --- Wrappers ----------------------------------------------------------------------------


def _wrapper(field_type: int) -> Unit:
    decode_scalar = SCALAR_DECODERS[field_type]
    encode_scalar = SCALAR_ENCODERS[field_type]

    def decode(codec: CodecLike, message: _Wrapper, value: Any, depth: int) -> None:
        message.value = decode_scalar(value)

    def encode(codec: CodecLike, message: _Wrapper, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise too_deep()
        return encode_scalar(message.value)

    return Unit(decode, encode)


# --- Any ---------------------------------------------------------------------------------


def _decode_any(codec: CodecLike, message: AnyMessage, value: Any, depth: int) -> None:
    obj = value if type(value) is dict else expect_object(value, "an Any")
    if not obj:
        return  # {} is the empty Any, as in json_format
    type_url = obj.get("@type", _MISSING)
    if type_url is _MISSING:
        raise ConversionError('Any has no "@type" key naming the type of its value')
    if type(type_url) is not str or not type_url.isascii():
        if not isinstance(type_url, str):
            raise ConversionError(
                f"expected a type URL string, got {describe(type_url)}", ["@type"]
            )
        try:
            decode_string(type_url)  # no unpaired surrogates, which no pool lookup survives
        except ConversionError as e:
            e.prepend("@type")
            raise
    cls = resolve_type(codec, type_url)
    inner = cls()
    if _is_well_known(cls):
        for key in obj:
            if key not in ("@type", "value") and not codec.ignore_unknown_fields:
                raise ConversionError(
                    f"unknown key {excerpt(key)}: an Any holding {cls.DESCRIPTOR.full_name} has "
                    'only "@type" and "value"',
                    [key],
                )
        if "value" not in obj:
            raise ConversionError(
                f'Any holding {cls.DESCRIPTOR.full_name} has no "value" key for its JSON form'
            )
        try:
            codec.decode_message(inner, obj["value"], depth + 1)
        except ConversionError as e:
            e.prepend("value")
            raise
    else:
        codec.decode_fields(inner, obj, depth + 1, skip="@type")
    try:
        # Deterministic, so the same JSON always packs to the same bytes (map order included).
        payload = inner.SerializeToString(deterministic=True)
    except EncodeError as e:  # a proto2 message missing required fields
        raise ConversionError(f"{cls.DESCRIPTOR.full_name} cannot be packed: {e}") from e
    message.type_url = type_url
    message.value = payload


_MISSING = object()


def _encode_any(codec: CodecLike, message: AnyMessage, depth: int) -> dict[str, Any]:
    if depth > MAX_DEPTH:
        raise too_deep()
    type_url, payload = message.type_url, message.value
    if not type_url:
        if payload:
            raise ConversionError("Any has a value but no type URL")
        return {}
    cls = resolve_type(codec, type_url)
    try:
        inner = cls.FromString(payload)
    except DecodeError as e:
        raise ConversionError(
            f"Any value is not a valid {cls.DESCRIPTOR.full_name} in binary form: {e}"
        ) from e
    codec.check_payload(inner, len(payload))
    if _is_well_known(cls):
        try:
            return {"@type": type_url, "value": codec.encode_message(inner, depth + 1)}
        except ConversionError as e:
            e.prepend("value")
            raise
    out: dict[str, Any] = {"@type": type_url}
    out.update(codec.encode_message(inner, depth + 1))
    return out


_WELL_KNOWN_CLASSES: dict[type[Message], bool] = {}


def _is_well_known(cls: type[Message]) -> bool:
    """Whether an Any holding ``cls`` writes its JSON form under "value"."""
    known = _WELL_KNOWN_CLASSES.get(cls)
    if known is None:
        known = _WELL_KNOWN_CLASSES[cls] = cls.DESCRIPTOR.full_name in WELL_KNOWN
    return known


def resolve_type(codec: CodecLike, type_url: str) -> type[Message]:
    cls = codec.registry.by_url.get(type_url)
    if cls is not None:
        return cls
    if "/" not in type_url or not type_name_of(type_url):
        raise ConversionError(
            f"type URL {excerpt(type_url)} is not of the form <prefix>/<full message name>, e.g. "
            "type.googleapis.com/google.rpc.ErrorInfo",
            ["@type"],
        )
    try:
        cls = codec.registry.resolve(type_url)
    except UnknownTypeError as e:
        raise ConversionError(str(e), ["@type"]) from e
    by_url = codec.registry.by_url
    if len(by_url) >= _BY_URL_LIMIT:  # the URLs come from the input: keep it bounded
        by_url.clear()
    by_url[type_url] = cls
    return cls


_BY_URL_LIMIT = 1024


def _wrappers() -> dict[str, Unit]:
    from google.protobuf.descriptor import FieldDescriptor as F

    types = {
        "DoubleValue": F.TYPE_DOUBLE,
        "FloatValue": F.TYPE_FLOAT,
        "Int64Value": F.TYPE_INT64,
        "UInt64Value": F.TYPE_UINT64,
        "Int32Value": F.TYPE_INT32,
        "UInt32Value": F.TYPE_UINT32,
        "BoolValue": F.TYPE_BOOL,
        "StringValue": F.TYPE_STRING,
        "BytesValue": F.TYPE_BYTES,
    }
    return {f"google.protobuf.{name}": _wrapper(t) for name, t in types.items()}


WELL_KNOWN: dict[str, Unit] = {
    "google.protobuf.Any": Unit(_decode_any, _encode_any),
    "google.protobuf.Duration": Unit(_decode_duration, _encode_duration),
    "google.protobuf.FieldMask": Unit(_decode_field_mask, _encode_field_mask),
    "google.protobuf.ListValue": Unit(_decode_list_value, _encode_list_value),
    "google.protobuf.Struct": Unit(_decode_struct, _encode_struct),
    "google.protobuf.Timestamp": Unit(_decode_timestamp, _encode_timestamp),
    "google.protobuf.Value": Unit(_decode_value, _encode_value),
    **_wrappers(),
}
