"""Proto3 JSON for scalar field values: one decoder and one encoder per field type.

Decoders take a value as ``json.loads`` produces it and return what the message field takes;
encoders do the reverse. Both raise ConversionError without a path; the caller adds it.
They accept everything the proto3 JSON mapping allows and are stricter than json_format where
json_format is lax in a way that loses data or accepts non-JSON text (``"1_000"``, ``" 1"``,
``true`` for a double, base64 with stray characters).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import struct
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from google.protobuf.descriptor import EnumDescriptor, FieldDescriptor

from .._errors import ConversionError, excerpt
from .jsontext import DuplicateKeys

Decoder = Callable[[Any], Any]
Encoder = Callable[[Any], Any]

_INTEGER_TEXT = re.compile(r"-?[0-9]+\Z")
_NUMBER_TEXT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?\Z")
_UNPAIRED_SURROGATE = re.compile(
    "[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]"
)
_SURROGATE = re.compile("[\ud800-\udfff]")
_BASE64_TEXT = re.compile(r"[A-Za-z0-9+/\-_]*={0,2}\Z")


def describe(value: Any) -> str:
    """How a JSON value reads in an error message."""
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, str):
        return f"string {excerpt(value, 40)}"
    if isinstance(value, (int, float)):
        return f"number {excerpt(value)}"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "an array"
    return f"a Python {type(value).__name__}"


def expect_object(value: Any, what: str) -> dict[str, Any]:
    """The value as a JSON object; duplicate keys are reported here, with the key as path."""
    if type(value) is dict:
        return value
    if type(value) is DuplicateKeys:
        raise ConversionError(f"duplicate key {excerpt(value.duplicate)}", [value.duplicate])
    if isinstance(value, dict):
        return value
    raise ConversionError(f"expected {what} (a JSON object), got {describe(value)}")


def _integer_decoder(low: int, high: int, kind: str) -> Decoder:
    def decode(value: Any) -> int:
        if type(value) is int:
            number = value
        elif type(value) is str and value.isascii() and value.isdigit():
            number = int(value)  # the usual spelling of an int64: digits in a string
        elif isinstance(value, bool) or value is None:
            raise ConversionError(f"expected an {kind} (number or string), got {describe(value)}")
        elif isinstance(value, int):
            number = int(value)
        elif isinstance(value, float):
            if not value.is_integer():  # also false for inf and nan
                raise ConversionError(f"expected an {kind}, got non-integral {describe(value)}")
            number = int(value)
        elif isinstance(value, str):
            number = _integer_from_text(value, kind)
        else:
            raise ConversionError(f"expected an {kind}, got {describe(value)}")
        if not low <= number <= high:
            raise ConversionError(f"{kind} out of range [{low}, {high}]: {number}")
        return number

    return decode


def _integer_from_text(text: str, kind: str) -> int:
    if _INTEGER_TEXT.match(text):
        return int(text)
    if _NUMBER_TEXT.match(text):
        # Exponent or fraction: exact decimal arithmetic, so "9223372036854775807e0" stays
        # exact where a float would round it.
        try:
            number = Decimal(text)
        except InvalidOperation:  # pragma: no cover - the pattern admits only valid numbers
            pass
        else:
            if not number:
                return 0  # "0e50" too, as json_format reads it
            if abs(number.adjusted()) <= 40 and number == number.to_integral_value():
                return int(number)
    raise ConversionError(f"expected an {kind}, got {describe(text)}")


def _float_decoder(single: bool) -> Decoder:
    kind = "float" if single else "double"

    def decode(value: Any) -> float:
        if type(value) is float and not single and value - value == 0.0:
            return value  # a finite double, as JSON numbers with a fraction read
        if isinstance(value, bool) or value is None:
            raise ConversionError(f"expected a {kind}, got {describe(value)}")
        if isinstance(value, (int, float)):
            try:
                number = float(value)
            except OverflowError as e:
                raise ConversionError(f"{kind} out of range: {value}") from e
        elif isinstance(value, str):
            if value in _SPECIAL_FLOATS:
                return _SPECIAL_FLOATS[value]
            if not _NUMBER_TEXT.match(value):
                raise ConversionError(
                    f'expected a {kind} (a number, or "NaN", "Infinity", "-Infinity"), '
                    f"got {describe(value)}"
                )
            number = float(value)
        else:
            raise ConversionError(f"expected a {kind}, got {describe(value)}")
        if math.isinf(number):
            raise ConversionError(f"{kind} out of range: {value}")
        if single:
            # Out of range only where it would round to infinity: the shortest text of the
            # largest float (3.4028235e+38) is a hair above it and must read back.
            try:
                _FLOAT32.pack(number)
            except OverflowError as e:
                raise ConversionError(f"{kind} out of range: {value}") from e
        return number

    return decode


_SPECIAL_FLOATS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def decode_bool(value: Any) -> bool:
    if value is True or value is False:
        return value
    raise ConversionError(f"expected true or false, got {describe(value)}")


def decode_string(value: Any) -> str:
    if type(value) is str and value.isascii():
        return value  # nothing to check in ASCII text
    if not isinstance(value, str):
        raise ConversionError(f"expected a string, got {describe(value)}")
    if _UNPAIRED_SURROGATE.search(value):
        raise ConversionError("string contains an unpaired UTF-16 surrogate")
    if _SURROGATE.search(value):  # json.loads makes these of "\\ud83d" and a raw low half
        raise ConversionError(
            "string holds a UTF-16 surrogate pair as two code points, which UTF-8 cannot encode"
        )
    return value


def decode_bytes(value: Any) -> bytes:
    if not isinstance(value, str):
        raise ConversionError(f"expected base64 text, got {describe(value)}")
    if not _BASE64_TEXT.match(value):
        raise ConversionError("expected base64 text, found characters outside the alphabet")
    # Standard and URL-safe alphabets, padded or not, as the proto3 JSON mapping allows.
    text = value.rstrip("=").replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except binascii.Error as e:
        raise ConversionError(f"expected base64 text: {e}") from e


def enum_decoder(enum: EnumDescriptor) -> Decoder:
    by_name = {v.name: v.number for v in enum.values}
    numbers = frozenset(v.number for v in enum.values)
    closed = enum.is_closed
    null_value = enum.full_name == "google.protobuf.NullValue"

    def decode(value: Any) -> int:
        if isinstance(value, str):
            number = by_name.get(value)
            if number is None:
                raise UnknownEnumName(f"unknown name {excerpt(value)} of enum {enum.full_name}")
            return number
        if null_value and value is None:
            return 0
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # 1.0 is the number 1, as for integer fields
        if type(value) is int:
            if not -(2**31) <= value < 2**31:
                raise ConversionError(f"enum number out of int32 range: {value}")
            if closed and value not in numbers:
                raise ConversionError(f"{value} is not a number of closed enum {enum.full_name}")
            return value
        raise ConversionError(f"expected a name of enum {enum.full_name}, got {describe(value)}")

    return decode


class UnknownEnumName(ConversionError):
    """An enum name the schema does not define; skipped when unknown fields are ignored,
    as json_format does."""


def enum_encoder(enum: EnumDescriptor) -> Encoder:
    by_number: dict[int, Any] = {}
    for v in enum.values:  # the first name of an aliased number wins, as in json_format
        by_number.setdefault(v.number, v.name)
    if enum.full_name == "google.protobuf.NullValue":
        return _null  # whatever the number, as json_format writes it
    closed = enum.is_closed

    def encode(number: int) -> Any:
        name = by_number.get(number, _MISSING)
        if name is not _MISSING:
            return name
        if closed:
            raise ConversionError(f"{number} is not a number of closed enum {enum.full_name}")
        return number

    return encode


_MISSING = object()


def _null(number: int) -> None:
    return None


def _encode_int64(value: int) -> str:
    return str(value)


def _encode_double(value: float) -> Any:
    if value != value:
        return "NaN"
    if value in (math.inf, -math.inf):
        return "Infinity" if value > 0 else "-Infinity"
    return value


_FLOAT32 = struct.Struct("<f")


def _encode_float(value: float) -> Any:
    if value != value or value in (math.inf, -math.inf):
        return _encode_double(value)
    # The shortest decimal that reads back as the same 32-bit float, as json_format prints it.
    for precision in range(6, 10):
        rounded = float(f"{value:.{precision}g}")
        if _FLOAT32.unpack(_FLOAT32.pack(rounded))[0] == value:
            return rounded
    return value


def _encode_bytes(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def _identity(value: Any) -> Any:
    return value


_T = FieldDescriptor
_INT32 = _integer_decoder(-(2**31), 2**31 - 1, "int32")
_INT64 = _integer_decoder(-(2**63), 2**63 - 1, "int64")
_UINT32 = _integer_decoder(0, 2**32 - 1, "uint32")
_UINT64 = _integer_decoder(0, 2**64 - 1, "uint64")

SCALAR_DECODERS: dict[int, Decoder] = {
    _T.TYPE_INT32: _INT32,
    _T.TYPE_SINT32: _INT32,
    _T.TYPE_SFIXED32: _INT32,
    _T.TYPE_INT64: _INT64,
    _T.TYPE_SINT64: _INT64,
    _T.TYPE_SFIXED64: _INT64,
    _T.TYPE_UINT32: _UINT32,
    _T.TYPE_FIXED32: _UINT32,
    _T.TYPE_UINT64: _UINT64,
    _T.TYPE_FIXED64: _UINT64,
    _T.TYPE_FLOAT: _float_decoder(single=True),
    _T.TYPE_DOUBLE: _float_decoder(single=False),
    _T.TYPE_BOOL: decode_bool,
    _T.TYPE_STRING: decode_string,
    _T.TYPE_BYTES: decode_bytes,
}

SCALAR_ENCODERS: dict[int, Encoder] = {
    _T.TYPE_INT32: _identity,
    _T.TYPE_SINT32: _identity,
    _T.TYPE_SFIXED32: _identity,
    _T.TYPE_UINT32: _identity,
    _T.TYPE_FIXED32: _identity,
    _T.TYPE_INT64: _encode_int64,
    _T.TYPE_SINT64: _encode_int64,
    _T.TYPE_SFIXED64: _encode_int64,
    _T.TYPE_UINT64: _encode_int64,
    _T.TYPE_FIXED64: _encode_int64,
    _T.TYPE_FLOAT: _encode_float,
    _T.TYPE_DOUBLE: _encode_double,
    _T.TYPE_BOOL: _identity,
    _T.TYPE_STRING: _identity,
    _T.TYPE_BYTES: _encode_bytes,
}


def decode_map_key(field: FieldDescriptor, key: str) -> Any:
    """Map keys are always JSON strings; integer and bool keys are spelled out in them."""
    if field.type == _T.TYPE_BOOL:
        if key == "true":
            return True
        if key == "false":
            return False
        raise ConversionError(f'expected map key "true" or "false", got {excerpt(key)}')
    if field.type in (_T.TYPE_STRING,):
        return decode_string(key)
    if not _INTEGER_TEXT.match(key):
        raise ConversionError(f"expected an integer map key, got {excerpt(key)}")
    return SCALAR_DECODERS[field.type](key)


def encode_map_key(key: Any) -> str:
    if key is True:
        return "true"
    if key is False:
        return "false"
    return str(key)
