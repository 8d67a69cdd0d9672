"""The proto3 JSON mapping for any message type, driven by its descriptor.

Each message descriptor is compiled once into Python source specialised to its fields (see
``decode`` and ``encode``): a decoder that dispatches each JSON key to the code for its
field, and an encoder that reads the fields in order, so that converting a message never
walks its descriptor. Well-known types with a JSON form of their own go through the units
in ``wkt``.

Errors carry a JSON path: each level that catches a ConversionError prepends its key or
index and re-raises, so the success path never builds a path.

When the native core (``_native``, built from ``native/``) is present, it converts first:
JSON text or a JSON value -> wire bytes -> one ``MergeFromString`` to read,
``SerializePartialToString`` -> wire bytes -> JSON text or value to write, driven by the
tables of ``plan``. It accepts exactly what the Python codec accepts, with equal results;
whatever it does not accept it declines, and the Python codec runs on the same input and
gives the answer or the ConversionError with its path, so that there is one source of
errors. A conversion asks the core once: after a decline the Python codec runs (the core's
other entry point would apply the same rules to the same input). Conversions and declines
are counted (``native_stats``, public as ``v1op_pb.native_stats``).
``V1OP_PB_PURE_PYTHON=1`` in the environment turns the native core off.
"""

from __future__ import annotations

import threading
from types import ModuleType
from typing import Any, TypeVar

import orjson
from google.protobuf import unknown_fields
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import DecodeError, EncodeError, Message

from .._errors import ConversionError
from .._registry import TypeRegistry, default_registry
from . import jsontext
from .compile import (
    CodecLike,
    MessageDecoder,
    MessageEncoder,
    is_output_only,
)
from .decode import compile_decoder
from .encode import compile_encoder
from .jsontext import MAX_DEPTH, PURE_PYTHON, PURE_PYTHON_VARIABLE, _native, too_deep
from .plan import TABLES, TABLES_BY_CLASS, map_order_matches, table_for
from .wkt import WELL_KNOWN, resolve_type

__all__ = [
    "PURE_PYTHON_VARIABLE",
    "Codec",
    "is_output_only",
    "native_enabled",
    "native_stats",
    "set_native",
]

# The native core in use, or None (not built, or pure-Python mode).
_core: ModuleType | None = None if PURE_PYTHON else _native

# What the native core did not do, counted here (the core counts its own conversions and
# declines): messages it was not given (they do not serialize), and wire bytes it wrote that
# the protobuf runtime refused to read (which would be a bug in the core; the Python codec
# then runs, and tests check that this stays 0).
_STATS = {"emit_declined": 0, "wire_refused": 0}
_STATS_LOCK = threading.Lock()


def _count(what: str) -> None:
    with _STATS_LOCK:
        _STATS[what] += 1


_REPACK_MAPS: list[bool] = []


def _repack_maps() -> bool:
    """Whether the runtime must write Any payloads that hold maps (see map_order_matches)."""
    if not _REPACK_MAPS:
        _REPACK_MAPS.append(not map_order_matches())
    return _REPACK_MAPS[0]


def native_enabled() -> bool:
    """Whether conversions try the native core first."""
    return _core is not None


def set_native(enabled: bool) -> bool:
    """Turn the native core on or off (for tests and benchmarks); returns the previous
    state. Turning it on without the extension built raises RuntimeError."""
    global _core
    previous = _core is not None
    if enabled and _native is None:
        raise RuntimeError("the native codec core (v1op_pb._codec._native) is not built")
    _core = _native if enabled else None
    return previous


_CORE_COUNTS = (
    "parse",
    "parse_declined",
    "parse_text",
    "parse_text_declined",
    "emit",
    "emit_declined",
    "emit_text",
    "emit_text_declined",
)


def native_stats(reset: bool = False) -> dict[str, int]:
    """What the native core of the JSON codec did since the process started (or the last
    ``reset=True``), for monitoring that conversions take the fast path.

    ``parse``: messages read by the core (from JSON text or values; ``parse_text``: of them,
    from text); ``parse_declined`` and ``parse_text_declined``: inputs it left to the Python
    codec (unusual input, or input with an error, which the Python codec reports).
    ``emit`` and ``emit_text``: messages written as JSON values and as JSON text;
    ``emit_declined`` and ``emit_text_declined``: those it left to the Python codec.
    ``wire_refused``: wire bytes of the core that protobuf refused (a bug; always 0).
    Every count is present, all 0 when the core is not built or turned off."""
    with _STATS_LOCK:
        stats = dict(_STATS)
        if reset:
            for key in _STATS:
                _STATS[key] = 0
    core: dict[str, int] = dict.fromkeys(_CORE_COUNTS, 0)
    if _native is not None:
        core.update(_native.stats(reset))
    core["emit_declined"] += stats.pop("emit_declined")
    core.update(stats)
    return core


M = TypeVar("M", bound=Message)


class UnknownFieldsSeen(Exception):
    """Raised by the fast encoders when they meet a message with unknown fields; the codec
    then encodes again with a check at every message, which finds and reports the first."""


class Codec:
    """Converts messages of any type to and from proto3 JSON values (dicts, lists, ...).

    Decoding options: ``ignore_unknown_fields``. Encoding options: ``emit_unpopulated``
    (every field that has no presence-free value is written: messages as null, scalars as
    their default, as grpc-gateway's EmitUnpopulated does; oneof members stay out), and
    ``omit_output_only`` (fields annotated OUTPUT_ONLY are left out, for request bodies).
    """

    __slots__ = (
        "_encoders",
        "check_unknown",
        "emit_unpopulated",
        "ignore_unknown_fields",
        "omit_output_only",
        "registry",
    )

    def __init__(
        self,
        registry: TypeRegistry | None = None,
        *,
        ignore_unknown_fields: bool = False,
        emit_unpopulated: bool = False,
        omit_output_only: bool = False,
        check_unknown: bool = False,
    ) -> None:
        self.registry = registry if registry is not None else default_registry
        self.ignore_unknown_fields = ignore_unknown_fields
        self.emit_unpopulated = emit_unpopulated
        self.omit_output_only = omit_output_only
        # True for the encoding done again after UnknownFieldsSeen: every message is checked.
        self.check_unknown = check_unknown
        self._encoders = _encoder_table(emit_unpopulated, omit_output_only, check_unknown)

    # --- decoding --------------------------------------------------------------------------

    def decode(self, value: Any, message_class: type[M]) -> M:
        core = _core
        if core is not None and not self.check_unknown:
            wire = self._core_reads(core.decode, _table_of(message_class), value)
            if wire is not NotImplemented:
                message = _merged(wire, message_class)
                if message is not None:
                    return message
        return self._decode_python(value, message_class)

    def decode_text(self, data: str | bytes, message_class: type[M]) -> M:
        """``decode(jsontext.loads(data), message_class)``, read by the native core straight
        from the text when it can (no Python value in between); the same answer either way,
        and on anything the core declines, the Python codec gives it (or the error)."""
        core = _core
        if core is None or self.check_unknown:
            return self.decode(jsontext.loads(data), message_class)
        wire = self._core_reads(core.decode_text, _table_of(message_class), data)
        message = None if wire is NotImplemented else _merged(wire, message_class)
        if message is None:
            message = self._decode_python(jsontext.loads(data), message_class)
        return message

    def _decode_python(self, value: Any, message_class: type[M]) -> M:
        message = message_class()
        self.decode_message(message, value, 1)
        return message

    def transcode_text(self, data: str | bytes, message_class: type[Message]) -> bytes:
        """``encode_text(decode_text(data, message_class))``: JSON text in, compact JSON text
        out, this codec's decoding and encoding options both applied.

        The native core goes text -> wire -> text without making the message: the wire
        bytes it writes are ones the runtime reads as they are, and JSON written from them is
        what JSON written from the message read from them is (maps come out sorted either
        way; tests check the two paths agree)."""
        core = _core
        if core is None or self.check_unknown:
            return self.encode_text(self.decode_text(data, message_class))
        table = _table_of(message_class)
        wire = self._core_reads(core.decode_text, table, data)
        if wire is NotImplemented:  # the Python codec reads it (the core is asked once)
            return self.encode_text(self._decode_python(jsontext.loads(data), message_class))
        text = self._core_writes(core.encode_text, table, wire)
        if text is not NotImplemented:
            return text  # type: ignore[no-any-return]
        message = _merged(wire, message_class)
        if message is None:
            message = self._decode_python(jsontext.loads(data), message_class)
        return orjson.dumps(self._encode_python(message))

    def _core_reads(self, read: Any, table: Any, source: Any) -> Any:
        """Wire bytes from the core's ``read`` (decode or decode_text), or NotImplemented."""
        return read(
            table,
            source,
            self.ignore_unknown_fields,
            self._table_of_url,
            self.registry.by_url,
            TABLES_BY_CLASS,
            _repack_maps(),
        )

    def _core_writes(self, write: Any, table: Any, wire: bytes) -> Any:
        """What the core's ``write`` (encode or encode_text) makes of wire bytes, or
        NotImplemented."""
        return write(
            table,
            wire,
            self.omit_output_only,
            self.emit_unpopulated,
            self._table_of_url,
            self.registry.by_url,
            TABLES_BY_CLASS,
        )

    def _table_of_url(self, type_url: str) -> Any:
        """For the native core: the table of an Any's type, or None when the Python codec
        would refuse the URL (it then declines, and the Python codec reports it)."""
        try:
            cls = resolve_type(self, type_url)
        except ConversionError:
            return None
        descriptor: Descriptor = cls.DESCRIPTOR  # type: ignore[assignment]
        table = TABLES_BY_CLASS[cls] = table_for(descriptor)
        return table

    def decode_message(self, message: Message, value: Any, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise too_deep()
        # The stubs type DESCRIPTOR as the union of the pure-Python and upb descriptor
        # classes; the codec's tables are keyed by either alike.
        descriptor: Descriptor = message.DESCRIPTOR  # type: ignore[assignment]
        decoder_for(descriptor)(self, message, value, depth)

    def decode_fields(
        self, message: Message, value: Any, depth: int, skip: str | None = None
    ) -> None:
        """Set the fields of a regular message from a JSON object (``skip``: a key to pass)."""
        descriptor: Descriptor = message.DESCRIPTOR  # type: ignore[assignment]
        fields_decoder_for(descriptor)(self, message, value, depth, skip)

    # --- encoding --------------------------------------------------------------------------

    def encode(self, message: Message) -> Any:
        core = _core
        if core is not None and not self.check_unknown:
            wire = _serialized(message)
            if wire is not None:
                value = self._core_writes(core.encode, _table_of(type(message)), wire)
                if value is not NotImplemented:
                    return value
            else:
                _count("emit_declined")
        return self._encode_python(message)

    def _encode_python(self, message: Message) -> Any:
        if not self.check_unknown and _has_unknown_fields(message):
            return self._encode_checked(message)
        try:
            return self.encode_message(message, 1)
        except UnknownFieldsSeen:
            return self._encode_checked(message)

    def encode_text(self, message: Message) -> bytes:
        """Compact JSON text (UTF-8) of ``message``: ``orjson.dumps(self.encode(message))``,
        which the native core writes straight from the wire form when it can."""
        core = _core
        if core is not None and not self.check_unknown:
            wire = _serialized(message)
            if wire is None:
                _count("emit_declined")
                return orjson.dumps(self._encode_python(message))
            text = self._core_writes(core.encode_text, _table_of(type(message)), wire)
            if text is not NotImplemented:
                return text  # type: ignore[no-any-return]
            return orjson.dumps(self._encode_python(message))
        return orjson.dumps(self.encode(message))

    def encode_message(self, message: Message, depth: int) -> Any:
        descriptor: Descriptor = message.DESCRIPTOR  # type: ignore[assignment]
        encoder = self._encoders.get(descriptor)
        if encoder is None:
            encoder = encoder_for(descriptor, self)
        return encoder(self, message, depth)

    def unknown_fields_in(self, message: Message) -> None:
        """In the checked encoding, raise if ``message`` itself carries unknown fields."""
        if len(unknown_fields.UnknownFieldSet(message)):
            raise ConversionError(
                f"{message.DESCRIPTOR.full_name} carries fields its schema does not know "
                "(read from binary written with a newer schema?); JSON cannot carry them"
            )

    def check_payload(self, message: Message, size: int) -> None:
        """Check a message the codec parsed itself from ``size`` bytes (an Any payload) for
        unknown fields.

        The fast encoding checks its whole tree at once, cheaply, and asks for the checked
        encoding (UnknownFieldsSeen) only when that finds something; the checked encoding
        checks each message as it reaches it, so the error is the first in field order."""
        if self.check_unknown:
            return
        # The payload is ours to strip. Stripped, it serializes to fewer bytes exactly when it
        # had unknown fields. Compare with its own serialized size, not with ``size``: input
        # not written canonically (a map entry without its key, say) can serialize longer
        # than it was read and so hide the unknown fields' bytes.
        before = message.ByteSize()
        message.DiscardUnknownFields()
        if message.ByteSize() != before:
            raise UnknownFieldsSeen

    def _encode_checked(self, message: Message) -> Any:
        checked = Codec(
            self.registry,
            emit_unpopulated=self.emit_unpopulated,
            omit_output_only=self.omit_output_only,
            check_unknown=True,
        )
        return checked.encode_message(message, 1)


def _table_of(message_class: type[Message]) -> Any:
    """The native core's table of a message type."""
    # The stubs type DESCRIPTOR as the union of the pure-Python and upb descriptor classes;
    # the tables are keyed by either alike.
    descriptor: Descriptor = message_class.DESCRIPTOR  # type: ignore[assignment]
    return TABLES.get(descriptor) or table_for(descriptor)


def _merged(wire: bytes, message_class: type[M]) -> M | None:
    """A new message read from the core's wire bytes, or None if the runtime refuses them
    (a bug in the core, counted; the Python codec then runs)."""
    message = message_class()
    try:
        # Merge, not FromString: proto2 required fields may be missing here, as the Python
        # codec leaves them.
        message.MergeFromString(wire)
    except DecodeError:
        _count("wire_refused")
        return None
    return message


def _serialized(message: Message) -> bytes | None:
    """The wire bytes the core writes JSON from, or None for a message that does not
    serialize (the Python codec then runs)."""
    try:
        return message.SerializePartialToString()
    except EncodeError:
        return None


def _has_unknown_fields(message: Message) -> bool:
    """Whether any message in the tree carries unknown fields (Any payloads not included).

    One C round trip instead of a look at every message: a copy without its unknown fields
    serializes shorter exactly when there were some."""
    data = message.SerializePartialToString()  # proto2 required fields may be missing
    copy = type(message)()
    try:
        copy.MergeFromString(data)
    except DecodeError:  # nested deeper than the binary reader allows: check the slow way
        return True
    copy.DiscardUnknownFields()
    return copy.ByteSize() != len(data)


# --- compiled functions, one per message type (and encoding options) -----------------------

_DECODERS: dict[Descriptor, MessageDecoder] = {}
_FIELDS_DECODERS: dict[Descriptor, Any] = {}
# One table of encoders per set of encoding options: (emit_unpopulated, omit_output_only,
# check_unknown).
_ENCODERS: dict[tuple[bool, bool, bool], dict[Descriptor, MessageEncoder]] = {}


def _encoder_table(*options: bool) -> dict[Descriptor, MessageEncoder]:
    return _ENCODERS.setdefault(options, {})  # type: ignore[arg-type]


def fields_decoder_for(descriptor: Descriptor) -> Any:
    """(codec, message, json, depth, skip) -> None for a message with a JSON object form."""
    decoder = _FIELDS_DECODERS.get(descriptor)
    if decoder is None:
        decoder = _FIELDS_DECODERS[descriptor] = compile_decoder(descriptor, _links)
    return decoder


def decoder_for(descriptor: Descriptor) -> MessageDecoder:
    """(codec, message, json, depth) -> None: a well-known type's unit or the fields."""
    decoder = _DECODERS.get(descriptor)
    if decoder is None:
        unit = WELL_KNOWN.get(descriptor.full_name)
        decoder = unit.decode if unit is not None else fields_decoder_for(descriptor)
        _DECODERS[descriptor] = decoder
    return decoder


def encoder_for(descriptor: Descriptor, codec: Codec) -> MessageEncoder:
    return _links.encoder(
        descriptor, codec.emit_unpopulated, codec.omit_output_only, codec.check_unknown
    )


def _make_encoder(
    descriptor: Descriptor, emit_unpopulated: bool, omit_output_only: bool, check_unknown: bool
) -> MessageEncoder:
    unit = WELL_KNOWN.get(descriptor.full_name)
    if unit is None:
        return compile_encoder(
            descriptor, _links, emit_unpopulated, omit_output_only, check_unknown
        )
    encode_unit: MessageEncoder = unit.encode
    if not check_unknown:
        return encode_unit

    def encode(codec: CodecLike, message: Message, depth: int) -> Any:
        if depth <= MAX_DEPTH:  # the depth error comes first, as the unit reports it
            codec.unknown_fields_in(message)
        return encode_unit(codec, message, depth)

    return encode


class _Links:
    """What compiled code calls for the message types its fields hold.

    Looked up on first call rather than at compile time, so that recursive types compile."""

    @staticmethod
    def decoder(descriptor: Descriptor) -> MessageDecoder:
        return decoder_for(descriptor)

    @staticmethod
    def encoder(
        descriptor: Descriptor, emit_unpopulated: bool, omit_output_only: bool, checked: bool
    ) -> MessageEncoder:
        table = _encoder_table(emit_unpopulated, omit_output_only, checked)
        encoder = table.get(descriptor)
        if encoder is None:
            encoder = _make_encoder(descriptor, emit_unpopulated, omit_output_only, checked)
            table[descriptor] = encoder
        return encoder


_links = _Links()
