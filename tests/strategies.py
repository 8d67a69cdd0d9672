"""Hypothesis strategies for random, valid messages: Operations and other message types.

"Valid" means every message has a proto3 JSON form that reads back as the same message, so
that a failed round trip is a codec bug and never an artefact of the input. Sizes are kept
small: the interesting cases are the values, not the bulk.
"""

from __future__ import annotations

import functools
import math
import struct

from google.protobuf import (
    any_pb2,
    descriptor_pb2,
    descriptor_pool,
    duration_pb2,
    empty_pb2,
    field_mask_pb2,
    message_factory,
    struct_pb2,
    timestamp_pb2,
    type_pb2,
    wrappers_pb2,
)
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from hypothesis import strategies as st
from v1op.example.v1 import evaluation_pb2

from v1op_pb import Operation
from v1op_pb._codec.descriptors import is_repeated, is_required

__all__ = [
    "FLOAT32_MAX",
    "AllTypes",
    "all_types",
    "any_messages",
    "anys",
    "durations",
    "field_masks",
    "file_descriptor_protos",
    "json_values",
    "messages",
    "operations",
    "statuses",
    "timestamps",
    "types",
]

FLOAT32_MAX = struct.unpack("<f", struct.pack("<f", 3.4028234663852886e38))[0]
MIN_TIMESTAMP_SECONDS = -62135596800  # 0001-01-01T00:00:00Z
MAX_TIMESTAMP_SECONDS = 253402300799  # 9999-12-31T23:59:59Z
MAX_DURATION_SECONDS = 315576000000

_T = FieldDescriptor

# --- scalars -------------------------------------------------------------------------------

INT32 = st.integers(-(2**31), 2**31 - 1)
INT64 = st.integers(-(2**63), 2**63 - 1) | st.sampled_from([-(2**63), 2**63 - 1])
UINT32 = st.integers(0, 2**32 - 1)
UINT64 = st.integers(0, 2**64 - 1) | st.sampled_from([0, 2**64 - 1])
# The default alphabet of st.text() leaves out surrogates, so every string is valid UTF-8.
TEXT = st.text(max_size=10)
BYTES = st.binary(max_size=12)
# Only the canonical NaN: a NaN with another payload reads back as the canonical one, which is
# the same value in JSON but not the same bytes, and these tests compare bytes.
DOUBLE = st.floats(allow_nan=False) | st.just(math.nan)
# FLOAT32_MAX prints as 3.4028235e+38, which is larger than FLOAT32_MAX as a double, and
# json_format refuses to read it back (protocolbuffers/protobuf#8336); random messages, which
# json_format must read, leave it out, and test_codec.py covers it on its own.
FLOAT = st.floats(width=32, allow_nan=False).filter(lambda x: abs(x) != FLOAT32_MAX) | st.just(
    math.nan
)

_SCALARS = {
    _T.TYPE_INT32: INT32,
    _T.TYPE_SINT32: INT32,
    _T.TYPE_SFIXED32: INT32,
    _T.TYPE_INT64: INT64,
    _T.TYPE_SINT64: INT64,
    _T.TYPE_SFIXED64: INT64,
    _T.TYPE_UINT32: UINT32,
    _T.TYPE_FIXED32: UINT32,
    _T.TYPE_UINT64: UINT64,
    _T.TYPE_FIXED64: UINT64,
    _T.TYPE_FLOAT: FLOAT,
    _T.TYPE_DOUBLE: DOUBLE,
    _T.TYPE_BOOL: st.booleans(),
    _T.TYPE_STRING: TEXT,
    _T.TYPE_BYTES: BYTES,
}

# --- well-known types ----------------------------------------------------------------------

# Weighted towards whole milli- and microseconds, so that the 0, 3 and 6 digit output forms
# come up as often as the 9 digit one.
NANOS = st.one_of(
    st.just(0),
    st.integers(0, 999).map(lambda n: n * 1_000_000),
    st.integers(0, 999_999).map(lambda n: n * 1000),
    st.integers(0, 999_999_999),
)

timestamps = st.builds(
    timestamp_pb2.Timestamp,
    seconds=st.integers(MIN_TIMESTAMP_SECONDS, MAX_TIMESTAMP_SECONDS),
    nanos=NANOS,
)


@st.composite
def durations(draw: st.DrawFn) -> duration_pb2.Duration:
    seconds = draw(st.integers(-MAX_DURATION_SECONDS, MAX_DURATION_SECONDS))
    nanos = draw(NANOS)
    negative = seconds < 0 or (seconds == 0 and draw(st.booleans()))
    return duration_pb2.Duration(seconds=seconds, nanos=-nanos if negative else nanos)


# A path segment in snake case whose camelCase form reads back as the same segment: words of
# lowercase letters and digits, each starting with a letter, joined by single underscores.
_WORD = st.from_regex(r"[a-z][a-z0-9]{0,4}", fullmatch=True)
_SEGMENT = st.lists(_WORD, min_size=1, max_size=3).map("_".join)
_PATH = st.lists(_SEGMENT, min_size=1, max_size=3).map(".".join)
field_masks = st.lists(_PATH, max_size=3).map(lambda paths: field_mask_pb2.FieldMask(paths=paths))

# JSON values as Struct can hold them: numbers are finite doubles.
json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False, allow_infinity=False) | TEXT,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)


def _value(obj: object) -> struct_pb2.Value:
    # Built by hand rather than with Struct.update, so that an empty list or object is a set
    # list_value or struct_value and never left unset.
    value = struct_pb2.Value()
    if obj is None:
        value.null_value = struct_pb2.NULL_VALUE
    elif isinstance(obj, bool):
        value.bool_value = obj
    elif isinstance(obj, float):
        value.number_value = obj
    elif isinstance(obj, str):
        value.string_value = obj
    elif isinstance(obj, list):
        value.list_value.SetInParent()
        for item in obj:
            value.list_value.values.add().CopyFrom(_value(item))
    else:
        assert isinstance(obj, dict)
        value.struct_value.SetInParent()
        for key, item in obj.items():
            value.struct_value.fields[key].CopyFrom(_value(item))
    return value


values = json_values.map(_value)
structs = st.dictionaries(st.text(max_size=6), json_values, max_size=4).map(
    lambda d: _value(d).struct_value
)
list_values = st.lists(json_values, max_size=4).map(lambda items: _value(items).list_value)

_WRAPPER_VALUES: dict[type[Message], st.SearchStrategy] = {
    wrappers_pb2.DoubleValue: DOUBLE,
    wrappers_pb2.FloatValue: FLOAT,
    wrappers_pb2.Int64Value: INT64,
    wrappers_pb2.UInt64Value: UINT64,
    wrappers_pb2.Int32Value: INT32,
    wrappers_pb2.UInt32Value: UINT32,
    wrappers_pb2.BoolValue: st.booleans(),
    wrappers_pb2.StringValue: TEXT,
    wrappers_pb2.BytesValue: BYTES,
}
_WRAPPERS = {
    cls.DESCRIPTOR.full_name: st.builds(cls, value=value) for cls, value in _WRAPPER_VALUES.items()
}

# --- Any payloads --------------------------------------------------------------------------

ERROR_DETAILS: list[type[Message]] = [
    error_details_pb2.ErrorInfo,
    error_details_pb2.RetryInfo,
    error_details_pb2.BadRequest,
    error_details_pb2.QuotaFailure,
    error_details_pb2.PreconditionFailure,
    error_details_pb2.ResourceInfo,
    error_details_pb2.RequestInfo,
    error_details_pb2.DebugInfo,
    error_details_pb2.Help,
    error_details_pb2.LocalizedMessage,
]

PAYLOADS: list[type[Message]] = [
    duration_pb2.Duration,
    timestamp_pb2.Timestamp,
    field_mask_pb2.FieldMask,
    struct_pb2.Struct,
    struct_pb2.Value,
    struct_pb2.ListValue,
    *_WRAPPER_VALUES,
    empty_pb2.Empty,
    any_pb2.Any,
    status_pb2.Status,
    *ERROR_DETAILS,
    evaluation_pb2.EvaluationProgress,
    evaluation_pb2.EvaluationResult,
]

# The codec and json_format both resolve a type URL by its last path segment, whatever the
# prefix before it.
_PREFIXES = st.sampled_from(["type.googleapis.com/", "example.com/types/"])


def _pack(message: Message, prefix: str) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message, type_url_prefix=prefix, deterministic=True)
    return packed


@functools.cache
def anys(depth: int = 3, pool: tuple[type[Message], ...] = tuple(PAYLOADS)) -> st.SearchStrategy:
    """Any messages packing a random payload from ``pool``; nested Anys while depth lasts."""
    if depth <= 1:
        pool = tuple(cls for cls in pool if cls is not any_pb2.Any)
    payloads = st.one_of([messages(cls, depth - 1) for cls in pool])
    return st.builds(_pack, payloads, _PREFIXES)


@functools.cache
def statuses(depth: int = 2) -> st.SearchStrategy:
    """google.rpc.Status with google.rpc error details."""
    return st.builds(
        status_pb2.Status,
        code=st.integers(0, 16) | INT32,
        message=TEXT,
        details=st.lists(anys(depth, tuple(ERROR_DETAILS)), max_size=3),
    )


def _special(full_name: str, depth: int) -> st.SearchStrategy | None:
    """The strategy for a type whose valid values a field-by-field fill would not respect."""
    if full_name == "google.protobuf.Timestamp":
        return timestamps
    if full_name == "google.protobuf.Duration":
        return durations()
    if full_name == "google.protobuf.FieldMask":
        return field_masks
    if full_name == "google.protobuf.Struct":
        return structs
    if full_name == "google.protobuf.Value":
        return values
    if full_name == "google.protobuf.ListValue":
        return list_values
    if full_name == "google.protobuf.Any":
        return anys(max(depth, 1))
    if full_name == "google.rpc.Status":
        return statuses(max(depth, 1))
    return _WRAPPERS.get(full_name)


# --- any message, field by field ------------------------------------------------------------


def _is_map(field: FieldDescriptor) -> bool:
    return bool(
        is_repeated(field)
        and field.message_type is not None
        and field.message_type.GetOptions().map_entry
    )


def _enum_numbers(field: FieldDescriptor) -> st.SearchStrategy:
    known = st.sampled_from([v.number for v in field.enum_type.values])
    # An open enum holds any int32; a closed (proto2) enum only its own numbers.
    return known if field.enum_type.is_closed else known | INT32


def _element(field: FieldDescriptor, depth: int) -> st.SearchStrategy:
    if field.type in (_T.TYPE_MESSAGE, _T.TYPE_GROUP):
        return messages(message_factory.GetMessageClass(field.message_type), depth - 1)
    if field.type == _T.TYPE_ENUM:
        return _enum_numbers(field)
    return _SCALARS[field.type]


@functools.cache
def messages(cls: type[Message], depth: int = 3) -> st.SearchStrategy:
    """Random messages of any type, driven by its descriptor.

    Each field is set or not at random; message-typed fields only while ``depth`` lasts,
    required fields always. Well-known types and Status come from their own strategies.
    """
    descriptor: Descriptor = cls.DESCRIPTOR
    special = _special(descriptor.full_name, depth)
    if special is not None:
        return special
    plan = []
    for field in descriptor.fields:
        is_message = field.message_type is not None
        if _is_map(field):
            entry = field.message_type
            value_field = entry.fields_by_name["value"]
            if value_field.message_type is not None and depth <= 0:
                continue
            strategy = st.dictionaries(
                _element(entry.fields_by_name["key"], depth),
                _element(value_field, depth),
                max_size=3,
            )
            plan.append((field, "map", value_field.message_type is not None, strategy))
        elif is_repeated(field):
            if is_message and depth <= 0:
                continue
            strategy = st.lists(_element(field, depth), max_size=2 if is_message else 3)
            plan.append((field, "repeated", is_message, strategy))
        else:
            if is_message and depth <= 0 and not is_required(field):
                continue
            plan.append((field, "single", is_message, _element(field, depth)))

    # The plan stays in the closure, not in the arguments, so that the strategy's repr (which
    # shows the arguments) stays short.
    # Innermost messages are sparse: they are the most numerous.
    sparse = depth <= 0

    @st.composite
    def fill(draw: st.DrawFn) -> Message:
        return _fill(draw, cls, plan, sparse)

    return fill()


_PRESENCE = st.integers(0, 3)  # shrinks towards 0: towards leaving a field unset


def _fill(draw: st.DrawFn, cls: type[Message], plan: list, sparse: bool) -> Message:
    message = cls()
    for field, kind, is_message, strategy in plan:
        if not is_required(field) and draw(_PRESENCE) < (3 if sparse else 2):
            continue
        _set_field(message, field, kind, is_message, draw(strategy))
    return message


def _set_field(
    message: Message, field: FieldDescriptor, kind: str, is_message: bool, value: object
) -> None:
    """Put a drawn value into a field: a map, a repeated field, a message or a scalar."""
    if kind == "map":
        container = getattr(message, field.name)
        for key, item in value.items():
            if is_message:
                container[key].CopyFrom(item)
            else:
                container[key] = item
    elif kind == "repeated":
        container = getattr(message, field.name)
        if is_message:
            for item in value:
                container.add().CopyFrom(item)
        else:
            container.extend(value)
    elif is_message:
        sub = getattr(message, field.name)
        sub.SetInParent()
        sub.CopyFrom(value)
    else:
        setattr(message, field.name, value)


# --- Operation -----------------------------------------------------------------------------


@st.composite
def operations(draw: st.DrawFn) -> Operation:
    """Operations with each of the 12 fields set or not; at most one of error and response."""
    op = Operation()
    for name in ("name", "creator", "updater", "deleter"):
        if draw(st.booleans()):
            setattr(op, name, draw(TEXT))
    for name in ("create_time", "update_time", "delete_time", "seen_by_creator_time"):
        if draw(st.booleans()):
            getattr(op, name).CopyFrom(draw(timestamps))
    if draw(st.booleans()):
        op.metadata.CopyFrom(draw(anys()))
    op.done = draw(st.booleans())
    result = draw(st.sampled_from(["none", "error", "response"]))
    if result == "error":
        op.error.CopyFrom(draw(statuses()))
    elif result == "response":
        op.response.CopyFrom(draw(anys()))
    return op


# --- other message types -------------------------------------------------------------------


def _build_all_types() -> type[Message]:
    """A proto3 message with every scalar kind, every map key kind, an open enum with an
    alias, a oneof, a proto3 optional field and recursion; built at run time, so that no
    generated module is needed."""
    F = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(
        name="v1op_pb_tests/all_types.proto", package="v1op_pb_tests", syntax="proto3"
    )
    color = file.enum_type.add(name="Color")
    color.options.allow_alias = True
    for name, number in [("COLOR_UNSPECIFIED", 0), ("RED", 1), ("GREEN", 2), ("VERDE", 2)]:
        color.value.add(name=name, number=number)
    msg = file.message_type.add(name="AllTypes")
    scalars = {
        "int32": F.TYPE_INT32,
        "int64": F.TYPE_INT64,
        "uint32": F.TYPE_UINT32,
        "uint64": F.TYPE_UINT64,
        "sint32": F.TYPE_SINT32,
        "sint64": F.TYPE_SINT64,
        "fixed32": F.TYPE_FIXED32,
        "fixed64": F.TYPE_FIXED64,
        "sfixed32": F.TYPE_SFIXED32,
        "sfixed64": F.TYPE_SFIXED64,
        "float": F.TYPE_FLOAT,
        "double": F.TYPE_DOUBLE,
        "bool": F.TYPE_BOOL,
        "string": F.TYPE_STRING,
        "bytes": F.TYPE_BYTES,
    }
    number = iter(range(1, 1000))

    def add(name: str, type_: int, label: int = F.LABEL_OPTIONAL, **kw: object) -> F:
        return msg.field.add(name=name, number=next(number), type=type_, label=label, **kw)

    for name, type_ in scalars.items():
        add(f"{name}_field", type_)
        add(f"repeated_{name}", type_, F.LABEL_REPEATED)
    add("color", F.TYPE_ENUM, type_name=".v1op_pb_tests.Color")
    add("colors", F.TYPE_ENUM, F.LABEL_REPEATED, type_name=".v1op_pb_tests.Color")
    add("child", F.TYPE_MESSAGE, type_name=".v1op_pb_tests.AllTypes")
    add("children", F.TYPE_MESSAGE, F.LABEL_REPEATED, type_name=".v1op_pb_tests.AllTypes")
    msg.oneof_decl.add(name="choice")
    add("choice_text", F.TYPE_STRING, oneof_index=0)
    add("choice_number", F.TYPE_INT64, oneof_index=0)
    add("choice_child", F.TYPE_MESSAGE, oneof_index=0, type_name=".v1op_pb_tests.AllTypes")
    msg.oneof_decl.add(name="_maybe_count")  # synthetic oneofs come after the real ones
    add("maybe_count", F.TYPE_INT32, oneof_index=1, proto3_optional=True)
    map_keys = [k for k in scalars if k not in ("float", "double", "bytes")]
    map_values = [
        ("string", F.TYPE_STRING, ""),
        ("color", F.TYPE_ENUM, ".v1op_pb_tests.Color"),
        ("child", F.TYPE_MESSAGE, ".v1op_pb_tests.AllTypes"),
    ]
    for key in map_keys:
        for value_name, value_type, value_type_name in map_values:
            if key != "string" and value_name != "string":
                continue  # every key kind once, every value kind once
            entry_name = f"{key.capitalize()}To{value_name.capitalize()}Entry"
            entry = msg.nested_type.add(name=entry_name)
            entry.options.map_entry = True
            entry.field.add(name="key", number=1, type=scalars[key], label=F.LABEL_OPTIONAL)
            value = entry.field.add(name="value", number=2, type=value_type, label=F.LABEL_OPTIONAL)
            if value_type_name:
                value.type_name = value_type_name
            add(
                f"{key}_to_{value_name}",
                F.TYPE_MESSAGE,
                F.LABEL_REPEATED,
                type_name=f".v1op_pb_tests.AllTypes.{entry_name}",
            )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("v1op_pb_tests.AllTypes"))


AllTypes = _build_all_types()

all_types = messages(AllTypes, 1)
# proto2, closed enums, explicit presence, required fields, nested repeated messages.
file_descriptor_protos = messages(descriptor_pb2.FileDescriptorProto, 3)
# proto3 with open enums and an Any inside (Option.value).
types = messages(type_pb2.Type, 3)

any_messages = st.one_of(operations(), all_types, file_descriptor_protos, types)
"""Messages of all the types above, for properties that hold for every message."""


# --- messages of a type from any descriptor pool ----------------------------------------------
#
# messages() fills message fields with CopyFrom, which takes only an instance of the field's
# own class; for a type built in a private descriptor pool (a compiled .proto, with its own
# copies of the well-known types) the well-known-type strategies above give instances of the
# default pool's classes. pool_messages() moves such values into the field's class through
# their bytes, packs Anys with the caller's payload types, and lets the caller thin out big
# types (one with a hundred fields, most of them left unset).


def _into(cls: type[Message]):
    def convert(message: Message) -> Message:
        if type(message) is cls:
            return message
        return cls.FromString(message.SerializePartialToString(deterministic=True))

    return convert


def _prints_as_null_element(field: FieldDescriptor) -> bool:
    """A NullValue prints as null, which no repeated element or map value may be on input:
    a set one has no JSON form that reads back, in json_format as in the codec."""
    if _is_map(field):
        field = field.message_type.fields_by_name["value"]
    elif not is_repeated(field):
        return False
    return field.enum_type is not None and field.enum_type.full_name == "google.protobuf.NullValue"


@functools.cache
def pool_anys(
    cls: type[Message], payloads: tuple[type[Message], ...], depth: int = 2, density: int = 3
) -> st.SearchStrategy:
    """Instances of ``cls`` (an Any class of any pool) packing one of ``payloads``, themselves
    drawn with pool_messages; an Any among the payloads nests while depth lasts."""
    if depth <= 1:
        payloads = tuple(p for p in payloads if p.DESCRIPTOR.full_name != "google.protobuf.Any")
    inner = st.one_of([pool_messages(p, depth - 1, payloads, density) for p in payloads])
    return st.builds(_pack, inner, _PREFIXES).map(_into(cls))


@functools.cache
def pool_messages(
    cls: type[Message],
    depth: int = 2,
    payloads: tuple[type[Message], ...] = (),
    density: int = 3,
) -> st.SearchStrategy:
    """Random valid messages of ``cls``, whatever pool it comes from; as messages(), but:

    - well-known types are instances of the field's own class;
    - an Any packs one of ``payloads`` (classes of any pool; Any itself nests);
    - each field is set with probability 1 / (density + 1), halved again in the innermost
      messages, so that a type with a hundred fields stays small;
    - a NullValue field holds 0 (any number prints as null); repeated NullValue fields and
      maps of NullValue are left empty (see _prints_as_null_element).
    """
    full_name = cls.DESCRIPTOR.full_name
    if full_name == "google.protobuf.Any":
        if not payloads:
            return st.just(cls())
        return pool_anys(cls, payloads, max(depth, 1), density)
    special = _special(full_name, depth)
    if special is not None:
        return special.map(_into(cls))

    def element(field: FieldDescriptor) -> st.SearchStrategy:
        if field.message_type is not None:
            sub = message_factory.GetMessageClass(field.message_type)
            # An Any takes a level off its payload already: the field does not, so that an
            # Any holding an Any comes up without deeper (much bigger) messages around it.
            is_any = field.message_type.full_name == "google.protobuf.Any"
            return pool_messages(sub, depth if is_any else depth - 1, payloads, density)
        if field.enum_type is not None:
            if field.enum_type.full_name == "google.protobuf.NullValue":
                # Any number prints as null, which reads back as 0.
                return st.just(0)
            return _enum_numbers(field)
        return _SCALARS[field.type]

    plan = []
    for field in cls.DESCRIPTOR.fields:
        if _prints_as_null_element(field):
            continue
        if _is_map(field):
            key_field = field.message_type.fields_by_name["key"]
            value_field = field.message_type.fields_by_name["value"]
            is_message = value_field.message_type is not None
            if is_message and depth <= 0:
                continue
            strategy = st.dictionaries(element(key_field), element(value_field), max_size=2)
            plan.append((field, "map", is_message, strategy))
        elif is_repeated(field):
            is_message = field.message_type is not None
            if is_message and depth <= 0:
                continue
            strategy = st.lists(element(field), max_size=2 if is_message else 3)
            plan.append((field, "repeated", is_message, strategy))
        else:
            is_message = field.message_type is not None
            if is_message and depth <= 0:
                continue
            plan.append((field, "single", is_message, element(field)))
    # Shrinks towards 0: towards leaving the field unset.
    presence = st.integers(0, density if depth > 0 else 2 * density + 1)

    @st.composite
    def fill(draw: st.DrawFn) -> Message:
        message = cls()
        for field, kind, is_message, strategy in plan:
            if draw(presence) != density:
                continue
            _set_field(message, field, kind, is_message, draw(strategy))
        return message

    return fill()
