"""The proto3 JSON mapping for any message type, driven by its descriptor.

Each message descriptor is compiled once into a plan: for every field, a decoder and an
encoder specialised to its kind (scalar, enum, message, repeated, map), so that converting a
message walks only its own fields. Well-known types with a JSON form of their own go through
the units in ``_wkt``.

Errors carry a JSON path: each level that catches a ConversionError prepends its key or
index and re-raises, so the success path never builds a path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from google.api import field_behavior_pb2
from google.protobuf import descriptor_pb2, unknown_fields
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from ._errors import ConversionError
from ._jsontext import MAX_DEPTH
from ._registry import TypeRegistry, default_registry
from ._scalars import (
    SCALAR_DECODERS,
    SCALAR_ENCODERS,
    UnknownEnumName,
    decode_map_key,
    describe,
    encode_map_key,
    enum_decoder,
    enum_encoder,
    expect_object,
)
from ._wkt import WELL_KNOWN

__all__ = ["Codec", "is_output_only"]

# (codec, message, json value, depth) -> None: sets the field on the message.
FieldDecoder = Callable[["Codec", Message, Any, int], None]
# (codec, field value as ListFields gives it, depth) -> JSON value.
FieldEncoder = Callable[["Codec", Any, int], Any]

_OUTPUT_ONLY = field_behavior_pb2.OUTPUT_ONLY
_VALUE = "google.protobuf.Value"
_NULL_VALUE = "google.protobuf.NullValue"


class _Field:
    """How one field (or extension) converts; ``json_name`` is its JSON key."""

    __slots__ = (
        "decode",
        "encode",
        "json_name",
        "name",
        "null",
        "number",
        "oneof",
        "output_only",
        "unpopulated",
    )

    def __init__(self, field: FieldDescriptor) -> None:
        self.name = field.name
        # Extensions are written "[full.name]", as in json_format.
        self.json_name = f"[{field.full_name}]" if field.is_extension else field.json_name
        self.number = field.number
        oneof = field.containing_oneof
        self.oneof = oneof.name if oneof is not None else None
        self.output_only = is_output_only(field)
        self.decode, self.encode, self.unpopulated = _compile_field(field)
        # What a JSON null means for this field: most fields are left unset; a Value field
        # holds null_value, and a NullValue enum field holds 0.
        self.null = _null_setter(field)


class _Plan:
    __slots__ = ("by_key", "by_number", "fields", "full_name")

    def __init__(self, descriptor: Descriptor) -> None:
        self.full_name = descriptor.full_name
        self.fields = [_Field(f) for f in descriptor.fields]
        self.by_number = {f.number: f for f in self.fields}
        self.by_key: dict[str, _Field] = {}
        for f in self.fields:
            self.by_key[f.name] = f
        for f in self.fields:  # the JSON name wins where a JSON name equals another's name
            self.by_key[f.json_name] = f


_PLANS: dict[Descriptor, _Plan] = {}


def _plan(descriptor: Descriptor) -> _Plan:
    plan = _PLANS.get(descriptor)
    if plan is None:
        plan = _PLANS[descriptor] = _Plan(descriptor)
    return plan


_EXTENSIONS: dict[FieldDescriptor, _Field] = {}


def _extension_plan(extension: FieldDescriptor) -> _Field:
    plan = _EXTENSIONS.get(extension)
    if plan is None:
        plan = _EXTENSIONS[extension] = _Field(extension)
    return plan


def _extension_field(descriptor: Descriptor, full_name: str) -> _Field | None:
    """The extension of ``descriptor`` named ``full_name``, from the pool it lives in."""
    if not descriptor.is_extendable:
        return None
    try:
        extension = descriptor.file.pool.FindExtensionByName(full_name)
    except KeyError:
        return None
    if extension.containing_type is not descriptor:
        return None
    return _extension_plan(extension)


def is_output_only(field: FieldDescriptor) -> bool:
    """Whether the field is annotated ``(google.api.field_behavior) = OUTPUT_ONLY``."""
    options = field.GetOptions()
    # Re-read through the default pool's FieldOptions so that the annotation is found also
    # on descriptors from another pool (a loaded descriptor set).
    parsed = descriptor_pb2.FieldOptions.FromString(options.SerializeToString())
    return _OUTPUT_ONLY in parsed.Extensions[field_behavior_pb2.field_behavior]


def _accessors(field: FieldDescriptor) -> tuple[Callable[[Message], Any], Callable[..., None]]:
    """(get, set) of the field on a message: attributes, or Extensions[...] for extensions."""
    if field.is_extension:

        def get_extension(message: Message) -> Any:
            return message.Extensions[field]

        def set_extension(message: Message, value: Any) -> None:
            message.Extensions[field] = value

        return get_extension, set_extension
    name = field.name

    def get(message: Message) -> Any:
        return getattr(message, name)

    def set_(message: Message, value: Any) -> None:
        setattr(message, name, value)

    return get, set_


def _null_setter(field: FieldDescriptor) -> Callable[[Message], None] | None:
    if field.is_repeated:
        return None
    get, set_ = _accessors(field)
    if field.message_type is not None and field.message_type.full_name == _VALUE:
        return lambda message: setattr(get(message), "null_value", 0)
    if field.enum_type is not None and field.enum_type.full_name == _NULL_VALUE:
        return lambda message: set_(message, 0)
    return None


def _element_codecs(field: FieldDescriptor) -> tuple[Any, Any, bool]:
    """(decoder, encoder, is_message) for one element of the field."""
    if field.type == FieldDescriptor.TYPE_MESSAGE or field.type == FieldDescriptor.TYPE_GROUP:
        return None, None, True
    if field.type == FieldDescriptor.TYPE_ENUM:
        return enum_decoder(field.enum_type), enum_encoder(field.enum_type), False
    return SCALAR_DECODERS[field.type], SCALAR_ENCODERS[field.type], False


def _is_map(field: FieldDescriptor) -> bool:
    return (
        field.is_repeated
        and field.message_type is not None
        and field.message_type.GetOptions().map_entry
    )


def _compile_field(field: FieldDescriptor) -> tuple[FieldDecoder, FieldEncoder, Any]:
    if _is_map(field):
        return _compile_map(field)
    get, set_ = _accessors(field)
    decode_element, encode_element, is_message = _element_codecs(field)
    if field.is_repeated:
        if is_message:
            return _repeated_message(get, field.message_type.full_name == _VALUE)
        return _repeated_scalar(get, decode_element, encode_element)
    if is_message:

        def decode_message(codec: Codec, message: Message, value: Any, depth: int) -> None:
            sub = get(message)
            sub.SetInParent()
            codec.decode_message(sub, value, depth + 1)

        def encode_message(codec: Codec, value: Any, depth: int) -> Any:
            return codec.encode_message(value, depth + 1)

        return decode_message, encode_message, _none

    def decode_scalar(codec: Codec, message: Message, value: Any, depth: int) -> None:
        try:
            set_(message, decode_element(value))
        except UnknownEnumName:
            if not codec.ignore_unknown_fields:
                raise

    def encode_scalar(codec: Codec, value: Any, depth: int) -> Any:
        return encode_element(value)

    default = encode_element(field.default_value)
    return decode_scalar, encode_scalar, lambda: default


def _repeated_scalar(
    get: Callable[[Message], Any], decode_element: Any, encode_element: Any
) -> tuple:
    def decode(codec: Codec, message: Message, value: Any, depth: int) -> None:
        decoded = []
        for index, item in enumerate(_array(value)):
            try:
                if item is None:
                    raise ConversionError("null is not allowed as an element of a repeated field")
                decoded.append(decode_element(item))
            except UnknownEnumName as e:
                if codec.ignore_unknown_fields:
                    continue  # json_format drops the element too
                e.prepend(index)
                raise
            except ConversionError as e:
                e.prepend(index)
                raise
        get(message).extend(decoded)

    def encode(codec: Codec, value: Any, depth: int) -> list[Any]:
        return [encode_element(item) for item in value]

    return decode, encode, list


def _repeated_message(get: Callable[[Message], Any], values_allow_null: bool) -> tuple:
    def decode(codec: Codec, message: Message, value: Any, depth: int) -> None:
        items = _array(value)
        container = get(message)
        for index, item in enumerate(items):
            try:
                if item is None and not values_allow_null:
                    raise ConversionError("null is not allowed as an element of a repeated field")
                codec.decode_message(container.add(), item, depth + 1)
            except ConversionError as e:
                e.prepend(index)
                raise

    def encode(codec: Codec, value: Any, depth: int) -> list[Any]:
        out = []
        for index, item in enumerate(value):
            try:
                out.append(codec.encode_message(item, depth + 1))
            except ConversionError as e:
                e.prepend(index)
                raise
        return out

    return decode, encode, list


def _compile_map(field: FieldDescriptor) -> tuple:
    name = field.name
    entry = field.message_type
    key_field = entry.fields_by_name["key"]
    value_field = entry.fields_by_name["value"]
    decode_value, encode_value, value_is_message = _element_codecs(value_field)
    value_allows_null = value_is_message and value_field.message_type.full_name == _VALUE

    def decode(codec: Codec, message: Message, value: Any, depth: int) -> None:
        obj = expect_object(value, f"a map of {entry.full_name}")
        container = getattr(message, name)
        for key, item in obj.items():
            try:
                map_key = decode_map_key(key_field, key)
                if item is None and not value_allows_null:
                    raise ConversionError("null is not allowed as a map value")
                if value_is_message:
                    # +2 for the map entry, as the binary decoder counts it.
                    codec.decode_message(container[map_key], item, depth + 2)
                else:
                    try:
                        container[map_key] = decode_value(item)
                    except UnknownEnumName:
                        if not codec.ignore_unknown_fields:
                            raise
            except ConversionError as e:
                e.prepend(key)
                raise

    def encode(codec: Codec, value: Any, depth: int) -> dict[str, Any]:
        out = {}
        for key, item in value.items():
            json_key = encode_map_key(key)
            try:
                if value_is_message:
                    out[json_key] = codec.encode_message(item, depth + 2)
                else:
                    out[json_key] = encode_value(item)
            except ConversionError as e:
                e.prepend(json_key)
                raise
        return out

    return decode, encode, dict


def _none() -> None:
    return None


def _array(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return value  # type: ignore[return-value]
    raise ConversionError(f"expected an array, got {describe(value)}")


class Codec:
    """Converts messages of any type to and from proto3 JSON values (dicts, lists, ...).

    Decoding options: ``ignore_unknown_fields``. Encoding options: ``emit_unpopulated``
    (every field that has no presence-free value is written: messages as null, scalars as
    their default, as grpc-gateway's EmitUnpopulated does; oneof members stay out), and
    ``omit_output_only`` (fields annotated OUTPUT_ONLY are left out, for request bodies).
    """

    __slots__ = ("emit_unpopulated", "ignore_unknown_fields", "omit_output_only", "registry")

    def __init__(
        self,
        registry: TypeRegistry | None = None,
        *,
        ignore_unknown_fields: bool = False,
        emit_unpopulated: bool = False,
        omit_output_only: bool = False,
    ) -> None:
        self.registry = registry if registry is not None else default_registry
        self.ignore_unknown_fields = ignore_unknown_fields
        self.emit_unpopulated = emit_unpopulated
        self.omit_output_only = omit_output_only

    # --- decoding --------------------------------------------------------------------------

    def decode(self, value: Any, message_class: type[Message]) -> Message:
        message = message_class()
        self.decode_message(message, value, 1)
        return message

    def decode_message(self, message: Message, value: Any, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise ConversionError(f"messages nested more than {MAX_DEPTH} levels deep")
        descriptor = message.DESCRIPTOR
        unit = WELL_KNOWN.get(descriptor.full_name)
        if unit is not None:
            unit.decode(self, value, message, depth)
        else:
            self.decode_fields(message, value, depth)

    def decode_fields(
        self, message: Message, value: Any, depth: int, skip: str | None = None
    ) -> None:
        """Set the fields of a regular message from a JSON object (``skip``: a key to pass)."""
        plan = _plan(message.DESCRIPTOR)
        obj = expect_object(value, plan.full_name)
        seen: dict[int, str] = {}
        oneofs: dict[str, str] = {}
        for key, item in obj.items():
            field = plan.by_key.get(key)
            if field is None and key.startswith("[") and key.endswith("]"):
                field = _extension_field(message.DESCRIPTOR, key[1:-1])
            if field is None:
                if key == skip or self.ignore_unknown_fields:
                    continue
                raise ConversionError(
                    f"unknown field {key!r} of {plan.full_name}; known fields: "
                    + ", ".join(f.json_name for f in plan.fields),
                    [key],
                )
            if field.number in seen:
                raise ConversionError(
                    f"field {field.name!r} is given twice, as {seen[field.number]!r} and {key!r}",
                    [key],
                )
            seen[field.number] = key
            if item is None:
                if field.null is not None:
                    field.null(message)
                continue
            if field.oneof is not None:
                other = oneofs.get(field.oneof)
                if other is not None:
                    raise ConversionError(
                        f"{other!r} and {key!r} are both set, but they belong to the oneof "
                        f"{field.oneof!r} of {plan.full_name}: at most one may be set",
                        [key],
                    )
                oneofs[field.oneof] = key
            try:
                field.decode(self, message, item, depth)
            except ConversionError as e:
                e.prepend(key)
                raise
            except (TypeError, ValueError) as e:
                # A value the runtime refuses after our checks passed; keep it a
                # ConversionError with its place.
                raise ConversionError(f"invalid value for {field.name!r}: {e}", [key]) from e

    # --- encoding --------------------------------------------------------------------------

    def encode(self, message: Message) -> Any:
        return self.encode_message(message, 1)

    def encode_message(self, message: Message, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise ConversionError(f"messages nested more than {MAX_DEPTH} levels deep")
        descriptor = message.DESCRIPTOR
        if len(unknown_fields.UnknownFieldSet(message)):
            raise ConversionError(
                f"{descriptor.full_name} carries fields its schema does not know (read from "
                "binary written with a newer schema?); JSON cannot carry them"
            )
        unit = WELL_KNOWN.get(descriptor.full_name)
        if unit is not None:
            return unit.encode(self, message, depth)
        plan = _plan(descriptor)
        omit_output_only = self.omit_output_only
        out: dict[str, Any] = {}
        listed = message.ListFields()
        if self.emit_unpopulated:
            # Every field in declaration order, as grpc-gateway writes them.
            present = {fd.number: value for fd, value in listed if not fd.is_extension}
            for field in plan.fields:
                if omit_output_only and field.output_only:
                    continue
                if field.number in present:
                    out[field.json_name] = self._encode_field(field, present[field.number], depth)
                elif field.oneof is None:
                    out[field.json_name] = field.unpopulated()
            listed = [(fd, value) for fd, value in listed if fd.is_extension]
        for field_descriptor, value in listed:
            if field_descriptor.is_extension:
                field = _extension_plan(field_descriptor)
            else:
                field = plan.by_number[field_descriptor.number]
            if omit_output_only and field.output_only:
                continue
            out[field.json_name] = self._encode_field(field, value, depth)
        return out

    def _encode_field(self, field: _Field, value: Any, depth: int) -> Any:
        try:
            return field.encode(self, value, depth)
        except ConversionError as e:
            e.prepend(field.json_name)
            raise
