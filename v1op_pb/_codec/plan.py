"""Compact tables of message types for the native core (``_native``), made once per type.

The C core reads only these tables, never a descriptor (as upb's mini tables drive its wire
and JSON coders). A table is filled from a ``TableSpec`` holding ``FieldSpec``s, read by
their names (``Table.init``): per field in number order its number, type, flags (repeated,
map, packed, presence, output-only, closed enum, NullValue), the index of its oneof when the
oneof has other members, its position in declaration order, its JSON key, the enum's name
tables, the table of its message type (or map entry type), and the JSON value
``emit_unpopulated`` writes for it when unset; and per type a tag for the well-known types
with a JSON form of their own, the JSON key -> field map (field names and JSON names, the
JSON name winning as in the Python decoder), and flags for what the core leaves to the
Python codec or must treat specially (groups; required fields, which packing into an Any
checks; maps, whose order in a parsed Any payload only a parse of it knows). The flag bits
and well-known-type tags are the C module's own constants.

Tables of the types a type reaches are made with it and published together, under a lock,
so that a table the core reads is always complete.
"""

from __future__ import annotations

import threading
from typing import Any, NamedTuple

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from .compile import is_output_only
from .descriptors import is_repeated, is_required
from .jsontext import _native
from .scalars import SCALAR_ENCODERS, enum_encoder

__all__ = [
    "TABLES",
    "TABLES_BY_CLASS",
    "FieldSpec",
    "TableSpec",
    "map_order_matches",
    "table_for",
    "wkt_tag",
]


_T = FieldDescriptor


class FieldSpec(NamedTuple):
    """One field of a table, as ``Table.init`` reads it (by these names)."""

    number: int
    type: int
    flags: int  # _native.F_*
    oneof: int  # index of a oneof with other members, or -1
    decl_index: int  # position in declaration order
    json_name: str
    enum_names: dict[int, str] | None  # number -> the first name (output)
    enum_numbers: dict[str, int] | None  # name -> number (input)
    sub: Any  # the Table of its message or map entry type, or None
    unpopulated: tuple[Any] | None  # (what emit_unpopulated writes,) or None: nothing


class TableSpec(NamedTuple):
    """One message type's table, as ``Table.init`` reads it (by these names)."""

    name: str
    wkt: int  # _native.W_*, 0 for a regular message
    flags: int  # _native.TF_*
    fields: tuple[FieldSpec, ...]  # by number
    keys: dict[str, int]  # field name and JSON name -> index in fields
    noneofs: int
    cls: Any  # the message class, or None


_WRAPPERS = ("Double", "Float", "Int64", "UInt64", "Int32", "UInt32", "Bool", "String", "Bytes")
_WKT_NAMES = {
    "google.protobuf.Any": "W_ANY",
    "google.protobuf.Duration": "W_DURATION",
    "google.protobuf.FieldMask": "W_FIELD_MASK",
    "google.protobuf.ListValue": "W_LIST_VALUE",
    "google.protobuf.Struct": "W_STRUCT",
    "google.protobuf.Timestamp": "W_TIMESTAMP",
    "google.protobuf.Value": "W_VALUE",
    **{f"google.protobuf.{kind}Value": "W_WRAPPER" for kind in _WRAPPERS},
}


def wkt_tag(full_name: str) -> int:
    """The core's tag of a well-known type with a JSON form of its own, or 0."""
    name = _WKT_NAMES.get(full_name)
    return 0 if name is None or _native is None else int(getattr(_native, name))


# The published tables, complete: read without the lock.
TABLES: dict[Descriptor, Any] = {}
_LOCK = threading.Lock()
# The table of each message class an Any resolved to, for the core to find without calling
# back into Python (classes are few: one per type the registries hand out).
TABLES_BY_CLASS: dict[type, Any] = {}


def table_for(descriptor: Descriptor) -> Any:
    """The native table of a message type (made with those of every type it reaches)."""
    table = TABLES.get(descriptor)
    if table is not None:
        return table
    if _native is None:
        raise RuntimeError("the native codec core (v1op_pb._codec._native) is not built")
    with _LOCK:
        table = TABLES.get(descriptor)
        if table is None:
            made = {d: _native.Table() for d in _reachable(descriptor) if d not in TABLES}
            tables = {**TABLES, **made}
            closure = _closure_flags(descriptor, _native)
            for d, t in made.items():
                _fill(d, t, tables, closure[d])
            TABLES.update(made)
            table = made[descriptor]
    return table


_ORDER_PROBE: bool | None = None


def map_order_matches() -> bool:
    """Whether the core writes map entries in the order this protobuf runtime's deterministic
    serializer writes them (found by experiment; upb changed it between releases). When it
    does not, the core has the runtime re-serialize each Any payload that holds maps, so
    that it packs the same bytes as the Python codec."""
    global _ORDER_PROBE
    if _ORDER_PROBE is None:
        _ORDER_PROBE = _probe_map_order()
    return _ORDER_PROBE


_PROBE_KEYS = {
    "string": ["", "a", "ab", "b", "ba", "\u00e9t\u00e9", "z"],
    "int64": ["-1", "0", "5", "-5", "9223372036854775807", "-9223372036854775808"],
    "uint64": ["0", "7", "18446744073709551615", "1"],
    "sint32": ["-1", "0", "3", "-3"],
    "bool": ["true", "false"],
}


def _probe_map_order() -> bool:
    kinds = {
        "string": _T.TYPE_STRING,
        "int64": _T.TYPE_INT64,
        "uint64": _T.TYPE_UINT64,
        "sint32": _T.TYPE_SINT32,
        "bool": _T.TYPE_BOOL,
    }
    file = descriptor_pb2.FileDescriptorProto(
        name="v1op_pb_map_order_probe.proto", package="v1op_pb_probe", syntax="proto3"
    )
    probe = file.message_type.add(name="Probe")
    for number, (kind, key_type) in enumerate(kinds.items(), start=1):
        entry = probe.nested_type.add(name=f"{kind.capitalize()}Entry")
        entry.options.map_entry = True
        entry.field.add(name="key", number=1, type=key_type, label=1)
        entry.field.add(name="value", number=2, type=_T.TYPE_INT32, label=1)
        probe.field.add(
            name=kind,
            number=number,
            type=_T.TYPE_MESSAGE,
            label=3,
            type_name=f".v1op_pb_probe.Probe.{entry.name}",
        )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    cls = message_factory.GetMessageClass(pool.FindMessageTypeByName("v1op_pb_probe.Probe"))
    message = cls()
    value: dict[str, dict[str, int]] = {}
    for kind, keys in _PROBE_KEYS.items():
        texts = keys
        value[kind] = dict.fromkeys(texts, 1)
        container = getattr(message, kind)
        for text in texts:
            key: object = text
            if kind == "bool":
                key = text == "true"
            elif kind != "string":
                key = int(text)
            container[key] = 1
    expected = message.SerializeToString(deterministic=True)
    assert _native is not None
    descriptor: Descriptor = cls.DESCRIPTOR  # type: ignore[assignment]
    ours = _native.decode(table_for(descriptor), value, False, None, {}, {}, False)
    return bool(ours == expected)


def _message_type(field: FieldDescriptor) -> Descriptor | None:
    return field.message_type if field.type == _T.TYPE_MESSAGE else None


def _reachable(descriptor: Descriptor) -> list[Descriptor]:
    seen = {descriptor: None}
    stack = [descriptor]
    while stack:
        for field in stack.pop().fields:
            sub = _message_type(field)
            if sub is not None and sub not in seen:
                seen[sub] = None
                stack.append(sub)
    return list(seen)


def _closure_flags(root: Descriptor, core: Any) -> dict[Descriptor, int]:
    """Per type reachable from root, whether a type it reaches (itself included) has
    required fields or maps. One depth-first pass (Tarjan's strongly connected components:
    the types of a cycle share their flags), so linear in the fields."""
    index: dict[Descriptor, int] = {}
    low: dict[Descriptor, int] = {}
    found: dict[Descriptor, int] = {}  # what a type and the types it reaches hold
    stack: list[Descriptor] = []
    flags: dict[Descriptor, int] = {}

    def visit(d: Descriptor) -> None:
        index[d] = low[d] = len(index)
        at = len(stack)
        stack.append(d)
        found[d] = 0
        for field in d.fields:
            if is_required(field):
                found[d] |= core.TF_HAS_REQUIRED
            if _is_map(field):
                found[d] |= core.TF_HAS_MAPS
            sub = _message_type(field)
            if sub is not None and sub not in index:
                visit(sub)
            if sub is not None and sub not in flags:  # on the stack: in d's component
                low[d] = min(low[d], low[sub])
            elif sub is not None:
                found[d] |= flags[sub]
        if low[d] == index[d]:  # d roots a component: pop it, with the flags of all of it
            component = stack[at:]
            del stack[at:]
            total = 0
            for member in component:
                total |= found[member]
            for member in component:
                flags[member] = total

    visit(root)
    return flags


def _is_map(field: FieldDescriptor) -> bool:
    sub = _message_type(field)
    return is_repeated(field) and sub is not None and sub.GetOptions().map_entry


def _real_oneof(field: FieldDescriptor) -> Any:
    oneof = field.containing_oneof
    if oneof is None or len(oneof.fields) == 1:
        return None
    return oneof


_UNPACKABLE = (_T.TYPE_STRING, _T.TYPE_BYTES, _T.TYPE_MESSAGE, _T.TYPE_GROUP)


def _is_packed(field: FieldDescriptor) -> bool:
    """Whether the runtime writes the repeated field packed (so the core writes it so too,
    and an Any packs the same bytes)."""
    if not is_repeated(field) or field.type in _UNPACKABLE:
        return False
    packed = getattr(field, "is_packed", None)  # protobuf 7; not in the 5.x floor
    if packed is not None:
        return bool(packed)
    return packed_by_runtime(field)


def packed_by_runtime(field: FieldDescriptor) -> bool:
    """Whether the runtime writes a repeated scalar field packed: one element written out,
    and the wire type of its tag read back (for runtimes without ``is_packed``)."""
    owner = field.containing_type
    assert owner is not None, field.full_name  # a field, not an extension
    message = message_factory.GetMessageClass(owner)()
    element: object = False if field.type == _T.TYPE_BOOL else 0
    if field.enum_type is not None:
        element = field.enum_type.values[0].number
    getattr(message, field.name).append(element)
    return message.SerializeToString()[0] & 7 == 2


def _encoder(field: FieldDescriptor) -> Any:
    if field.enum_type is not None:
        return enum_encoder(field.enum_type)
    return SCALAR_ENCODERS[field.type]


def _unpopulated(field: FieldDescriptor) -> tuple[Any] | None:
    """What compile.compile_encoder writes for the field, unset, with emit_unpopulated
    (None: nothing, as for every member of a oneof)."""
    if field.containing_oneof is not None:
        return None
    if _is_map(field):
        return ({},)
    if is_repeated(field):
        return ([],)
    if _message_type(field) is not None or field.type == _T.TYPE_GROUP:
        return (None,)
    return (_encoder(field)(field.default_value),)


def _field_flags(field: FieldDescriptor, core: Any) -> int:
    flags = 0
    for applies, flag in (
        (is_repeated(field), core.F_REPEATED),
        (_is_map(field), core.F_MAP),
        (_is_packed(field), core.F_PACKED),
        (field.has_presence and not is_repeated(field), core.F_PRESENCE),
        (is_output_only(field), core.F_OUTPUT_ONLY),
        (field.enum_type is not None and field.enum_type.is_closed, core.F_ENUM_CLOSED),
        (
            field.enum_type is not None
            and field.enum_type.full_name == "google.protobuf.NullValue",
            core.F_NULL_ENUM,
        ),
    ):
        if applies:
            flags |= flag
    return flags


def _fill(descriptor: Descriptor, table: Any, tables: dict[Descriptor, Any], flags: int) -> None:
    core = _native
    assert core is not None
    declared = {field.number: index for index, field in enumerate(descriptor.fields)}
    by_number = sorted(descriptor.fields, key=lambda f: f.number)
    real_oneofs = {
        o.name: None for o in descriptor.oneofs if any(_real_oneof(f) is o for f in o.fields)
    }
    oneof_index = {name: i for i, name in enumerate(real_oneofs)}
    specs = []
    for field in by_number:
        names: dict[int, str] | None = None
        numbers: dict[str, int] | None = None
        if field.enum_type is not None:
            names = {}
            for value in field.enum_type.values:  # the first name of an aliased number
                names.setdefault(value.number, value.name)
            numbers = {value.name: value.number for value in field.enum_type.values}
        oneof = _real_oneof(field)
        sub = _message_type(field)
        specs.append(
            FieldSpec(
                number=field.number,
                type=field.type,
                flags=_field_flags(field, core),
                oneof=-1 if oneof is None else oneof_index[oneof.name],
                decl_index=declared[field.number],
                json_name=field.json_name,
                enum_names=names,
                enum_numbers=numbers,
                sub=None if sub is None else tables[sub],
                unpopulated=_unpopulated(field),
            )
        )
    keys: dict[str, int] = {}
    for index, field in enumerate(by_number):
        keys[field.name] = index
    for index, field in enumerate(by_number):  # the JSON name wins, as in the decoder
        keys[field.json_name] = index
    cls = None if descriptor.GetOptions().map_entry else _message_class(descriptor)
    table.init(
        TableSpec(
            name=descriptor.full_name,
            wkt=wkt_tag(descriptor.full_name),
            flags=flags,
            fields=tuple(specs),
            keys=keys,
            noneofs=len(real_oneofs),
            cls=cls,
        )
    )


def _message_class(descriptor: Descriptor) -> Any:
    try:
        return message_factory.GetMessageClass(descriptor)
    except Exception:  # only Any payloads with maps need it; without it they decline
        return None
