"""Text format against protobuf's text-format conformance cases, where they apply.

The cases are those of protobuf's conformance/text_format_conformance_suite.cc, mapped onto
types this binding ships (the wrappers stand in for TestAllTypesProto3's scalar fields,
google.rpc types for its maps and Any): a valid input must read, and what to_text writes of
it must read back to the same message; an invalid one must be a ConversionError. The
conformance runner itself is not available here.
"""

from __future__ import annotations

import math

import pytest
from google.protobuf import wrappers_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

from v1op_pb import ConversionError, from_text, to_text

W = wrappers_pb2

VALID = [
    ("HelloWorld", W.StringValue, "value: 'Hello, World!'"),
    ("Int32FieldMaxValue", W.Int32Value, "value: 2147483647"),
    ("Int32FieldMinValue", W.Int32Value, "value: -2147483648"),
    ("Uint32FieldMaxValue", W.UInt32Value, "value: 4294967295"),
    ("Int64FieldMaxValue", W.Int64Value, "value: 9223372036854775807"),
    ("Int64FieldMinValue", W.Int64Value, "value: -9223372036854775808"),
    ("Uint64FieldMaxValue", W.UInt64Value, "value: 18446744073709551615"),
    ("FloatField", W.FloatValue, "value: 3.192837"),
    ("FloatFieldWithVeryPreciseNumber", W.FloatValue, "value: 3.123456789123456789"),
    ("FloatFieldMaxValue", W.FloatValue, "value: 3.4028235e+38"),
    ("FloatFieldMinValue", W.FloatValue, "value: 1.17549e-38"),
    ("FloatFieldNaNValue", W.FloatValue, "value: NaN"),
    ("FloatFieldPosInfValue", W.FloatValue, "value: inf"),
    ("FloatFieldNegInfValue", W.FloatValue, "value: -inf"),
    ("FloatFieldWithInt32Max", W.FloatValue, "value: 4294967296"),
    ("FloatFieldLargerThanInt64", W.FloatValue, "value: 9223372036854775808"),
    ("FloatFieldTooLarge", W.FloatValue, "value: 3.4028235e+39"),
    ("FloatFieldTooSmall", W.FloatValue, "value: 1.17549e-39"),
    ("FloatFieldLargerThanUint64", W.FloatValue, "value: 18446744073709551616"),
    *[
        (f"{name}{kind.__name__}", kind, text)
        for kind in (W.StringValue, W.BytesValue)
        for name, text in [
            ("StringLiteralConcat", "value: 'first' \"second\"\n'third'"),
            ("StringLiteralBasicEscapes", "value: '\\a\\b\\f\\n\\r\\t\\v\\?\\\\\\'\\\"'"),
            ("StringLiteralOctalEscapes", "value: '\\341\\210\\264'"),
            ("StringLiteralHexEscapes", "value: '\\xe1\\x88\\xb4'"),
            ("StringLiteralShortUnicodeEscape", "value: '\\u1234'"),
            ("StringLiteralLongUnicodeEscapes", "value: '\\U00001234\\U00010437'"),
        ]
    ],
    ("BytesFieldBadUTF8Octal", W.BytesValue, "value: '\\300'"),
    ("BytesFieldBadUTF8Hex", W.BytesValue, "value: '\\xc0'"),
    (
        "AnyField",
        status_pb2.Status,
        "details: {\n  [type.googleapis.com/google.rpc.ErrorInfo] {\n    reason: 'R'\n  }\n}\n",
    ),
    (
        "AnyFieldWithRawBytes",
        status_pb2.Status,
        "details: {\n  type_url: 'type.googleapis.com/google.rpc.ErrorInfo'\n"
        "  value: '\\n\\001R'\n}\n",
    ),
    (
        "AlphabeticallySortedMapStringKeys",
        error_details_pb2.ErrorInfo,
        'metadata {\n  key: "a"\n  value: "value"\n}\nmetadata {\n  key: "b"\n  value: "value"\n}\n'
        'metadata {\n  key: "c"\n  value: "value"\n}\n',
    ),
]

INVALID = [
    ("Int32FieldTooLarge", W.Int32Value, "value: 2147483648"),
    ("Int32FieldTooSmall", W.Int32Value, "value: -2147483649"),
    ("Uint32FieldTooLarge", W.UInt32Value, "value: 4294967296"),
    ("Int64FieldTooLarge", W.Int64Value, "value: 9223372036854775808"),
    ("Int64FieldTooSmall", W.Int64Value, "value: -9223372036854775809"),
    ("Uint64FieldTooLarge", W.UInt64Value, "value: 18446744073709551616"),
    *[
        (f"{name}{kind.__name__}", kind, text)
        for kind in (W.StringValue, W.BytesValue)
        for name, text in [
            ("StringLiteralIncludesLF", "value: 'first line\nsecond line'"),
            ("StringLiteralLongUnicodeEscapeTooLarge", "value: '\\U00110000'"),
            ("StringLiteralShortUnicodeEscapeSurrogatePair", "value: '\\ud801\\udc37'"),
            ("StringLiteralShortUnicodeEscapeSurrogateFirstOnly", "value: '\\ud800'"),
            ("StringLiteralShortUnicodeEscapeSurrogateSecondOnly", "value: '\\udc00'"),
            ("StringLiteralLongUnicodeEscapeSurrogateFirstOnly", "value: '\\U0000d800'"),
            ("StringLiteralLongUnicodeEscapeSurrogateSecondOnly", "value: '\\U0000dc00'"),
            ("StringLiteralUnicodeEscapeSurrogatePairLongShort", "value: '\\U0000d801\\udc37'"),
            ("StringLiteralUnicodeEscapeSurrogatePairShortLong", "value: '\\ud801\\U0000dc37'"),
        ]
    ],
    ("StringFieldBadUTF8Octal", W.StringValue, "value: '\\300'"),
    ("StringFieldBadUTF8Hex", W.StringValue, "value: '\\xc0'"),
    (
        "AnyFieldWithInvalidType",
        status_pb2.Status,
        "details: {\n  [type.googleapis.com/unknown] {\n    code: 12345\n  }\n}\n",
    ),
]


def same(a: Message, b: Message) -> bool:
    """Equal, NaN included (a NaN is not equal to itself)."""
    if a == b:
        return True
    value_a, value_b = getattr(a, "value", None), getattr(b, "value", None)
    return (
        isinstance(value_a, float)
        and isinstance(value_b, float)
        and math.isnan(value_a)
        and math.isnan(value_b)
    )


@pytest.mark.parametrize(("name", "cls", "text"), VALID, ids=[c[0] for c in VALID])
def test_valid_text_reads_and_round_trips(name, cls, text):
    message = from_text(text, message_type=cls)
    written = to_text(message)
    assert same(from_text(written, message_type=cls), message), written


@pytest.mark.parametrize(("name", "cls", "text"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_text_is_a_conversion_error(name, cls, text):
    with pytest.raises(ConversionError):
        from_text(text, message_type=cls)


def test_sorted_map_keys_are_written_as_given():
    text = VALID[-1][2]
    assert to_text(from_text(text, message_type=error_details_pb2.ErrorInfo)) == text


def test_a_duplicate_map_key_keeps_the_last_value():
    info = from_text(
        'metadata { key: "duplicate" value: "first" }\n'
        'metadata { key: "duplicate" value: "last" }\n',
        message_type=error_details_pb2.ErrorInfo,
    )
    assert dict(info.metadata) == {"duplicate": "last"}
