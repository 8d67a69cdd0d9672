"""Streaming conversion of many messages: NDJSON and length-delimited binary.

NDJSON is one JSON message per ``\\n``-terminated UTF-8 line. Length-delimited binary is
each message's binary encoding preceded by its length as a base-128 varint, the framing of
Java's ``writeDelimitedTo``, C++'s ``SerializeDelimitedToOstream`` and Go's ``protodelim``.

Everything here runs in constant memory: records are read one at a time from a binary
stream, written as soon as they are converted, and only counted, never kept. A bad record
is reported where it was read (line number, or record number and byte offset) and either
stops the conversion or, with ``skip_invalid``, is skipped.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import BinaryIO, NamedTuple, TextIO

from google.protobuf.message import Message

from ._errors import ConversionError
from ._formats import from_binary, to_binary
from ._json import _codec
from ._operation import Operation
from ._registry import TypeRegistry, UnknownTypeError

__all__ = [
    "MAX_RECORD_BYTES",
    "STREAM_FORMATS",
    "BadRecord",
    "BrokenStream",
    "Reporter",
    "Summary",
    "convert_stream",
    "encode_varint",
    "read_delimited",
    "read_ndjson",
]

MAX_RECORD_BYTES = 4 * 1024 * 1024
"""The longest line or record read, as the 4 MiB message limit of ``v1op serve``."""

STREAM_FORMATS = ("ndjson", "delimited")

# JSON's whitespace (RFC 8259): a line of only these is blank. Not bytes.isspace(), which
# would also pass form feeds and vertical tabs that no JSON reader accepts.
_JSON_WHITESPACE = b" \t\r\n"
_DISCARD_CHUNK = 64 * 1024
_MAX_VARINT_BYTES = 10  # a uint64

# What a reader yields per record: its number (a line number for NDJSON), the byte offset
# where it starts, and its bytes, or the BadRecord that says why they could not be read.
Item = tuple[int, int, "bytes | BadRecord"]
Reader = Callable[[BinaryIO, int], Iterator[Item]]


class BadRecord(ValueError):
    """A record that could not be read out of the stream: too long, or cut short."""


class BrokenStream(BadRecord):
    """A framing error after which no later record can be found, even when skipping."""


# --- NDJSON -------------------------------------------------------------------------------


def read_ndjson(stream: BinaryIO, limit: int = MAX_RECORD_BYTES) -> Iterator[Item]:
    """The non-blank lines of ``stream``, each with its ``\\n`` (JSON ignores it).

    A line over ``limit`` bytes is yielded as a BadRecord; only ``limit`` bytes of it are
    ever held. A last line without ``\\n`` is still a line.
    """
    number = offset = 0
    while True:
        # One byte over the limit tells a line of exactly `limit` bytes from a longer one.
        line = stream.readline(limit + 1)
        if not line:
            return
        number += 1
        start = offset
        offset += len(line)
        if len(line) > limit and not line.endswith(b"\n"):
            offset += _discard_line(stream)
            yield number, start, BadRecord(f"line is longer than the limit of {limit} bytes")
        # The first byte decides cheaply for almost every line; only lines that start
        # with whitespace pay for the strip.
        elif line[:1] not in _JSON_WHITESPACE or line.strip(_JSON_WHITESPACE):
            yield number, start, line


def _discard_line(stream: BinaryIO) -> int:
    """Skip the rest of the current line in bounded chunks; the number of bytes skipped."""
    skipped = 0
    while True:
        chunk = stream.readline(_DISCARD_CHUNK)
        skipped += len(chunk)
        if not chunk or chunk.endswith(b"\n"):
            return skipped


# --- length-delimited binary --------------------------------------------------------------


def read_delimited(stream: BinaryIO, limit: int = MAX_RECORD_BYTES) -> Iterator[Item]:
    """The varint-length-prefixed records of ``stream``, numbered from 1.

    A record over ``limit`` bytes is skipped unread and yielded as a BadRecord. Input that
    ends inside a record yields a BadRecord and ends the stream; a malformed length prefix
    yields a BrokenStream, as nothing after it can be framed.
    """
    number = offset = 0
    while True:
        number += 1
        start = offset
        try:
            prefix = _read_varint(stream)
        except BadRecord as e:
            yield number, start, e
            return
        if prefix is None:
            return
        length, prefix_size = prefix
        offset += prefix_size
        if length > limit:
            skipped = _discard(stream, length)
            offset += skipped
            yield number, start, _too_long(length, limit, skipped)
            if skipped < length:
                return
            continue
        payload = _read_exactly(stream, length)
        offset += len(payload)
        if len(payload) < length:
            yield number, start, _truncated(length, len(payload))
            return
        yield number, start, payload


def _read_varint(stream: BinaryIO) -> tuple[int, int] | None:
    """A length prefix and its size in bytes; None at a clean end of the input."""
    value = shift = 0
    for size in range(1, _MAX_VARINT_BYTES + 1):
        byte = stream.read(1)
        if not byte:
            if size == 1:
                return None
            raise BadRecord("truncated: the input ends inside the length prefix")
        value |= (byte[0] & 0x7F) << shift
        if byte[0] < 0x80:
            if value >> 64:
                break
            return value, size
        shift += 7
    raise BrokenStream("malformed length prefix: not a varint of at most 64 bits")


def _read_exactly(stream: BinaryIO, length: int) -> bytes:
    """``length`` bytes, or fewer only at the end of the input.

    A pipe may return less than asked before its end; a buffered stream seldom does, so
    the common case is a single read.
    """
    data = stream.read(length)
    if len(data) == length or not data:
        return data
    parts = [data]
    got = len(data)
    while got < length:
        more = stream.read(length - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def _discard(stream: BinaryIO, length: int) -> int:
    """Skip ``length`` bytes in bounded chunks; the number skipped (fewer at the end)."""
    skipped = 0
    while skipped < length:
        chunk = stream.read(min(_DISCARD_CHUNK, length - skipped))
        if not chunk:
            break
        skipped += len(chunk)
    return skipped


def _too_long(length: int, limit: int, present: int) -> BadRecord:
    message = f"a record of {length} bytes is longer than the limit of {limit} bytes"
    if present < length:
        message += f", and the input ends after {present} of them"
    return BadRecord(message)


def _truncated(length: int, present: int) -> BadRecord:
    return BadRecord(
        f"truncated: the length prefix says {length} bytes, but the input ends after {present}"
    )


def encode_varint(value: int) -> bytes:
    """The base-128 varint of a non-negative int, least significant group first."""
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


# --- formats ------------------------------------------------------------------------------


Decode = Callable[[bytes], Message]
Encode = Callable[[Message], bytes]
Convert = Callable[[bytes], bytes]  # one record in, one out; raises ConversionError


class _Format(NamedTuple):
    read: Reader
    locate: Callable[[str, int, int], str]  # (name, number, offset) -> where, for errors


def _locate_line(name: str, number: int, offset: int) -> str:
    return f"{name}:{number}"


def _locate_record(name: str, number: int, offset: int) -> str:
    return f"{name}: record {number} at byte {offset}"


_FORMATS = {
    "ndjson": _Format(read_ndjson, _locate_line),
    "delimited": _Format(read_delimited, _locate_record),
}


def _decoder(
    source_format: str,
    message_type: type[Message],
    registry: TypeRegistry | None,
    ignore_unknown_fields: bool,
) -> Decode:
    if source_format == "ndjson":
        # from_json's own codec, found once rather than per line
        decode_text = _codec(registry, ignore_unknown_fields, False, False).decode_text
        return partial(decode_text, message_class=message_type)
    return partial(from_binary, message_type=message_type)


def _encoder(
    target_format: str,
    registry: TypeRegistry | None,
    emit_unpopulated: bool,
    omit_output_only: bool,
) -> Encode:
    if target_format == "ndjson":
        # to_json's text as UTF-8 bytes, without the round trip through str
        encode_text = _codec(registry, False, emit_unpopulated, omit_output_only).encode_text

        def encode_line(message: Message) -> bytes:
            # Compact JSON has no raw newline (json escapes control characters in
            # strings), so the line stays one line.
            return encode_text(message) + b"\n"

        return encode_line

    def encode_record(message: Message) -> bytes:
        data = to_binary(message)
        return encode_varint(len(data)) + data

    return encode_record


def _converter(
    source_format: str,
    target_format: str,
    message_type: type[Message],
    registry: TypeRegistry | None,
    ignore_unknown_fields: bool,
    emit_unpopulated: bool,
    omit_output_only: bool,
) -> Convert:
    if source_format == target_format == "ndjson":
        # Text to text: the codec skips the message in between when its native core can.
        transcode = _codec(
            registry, ignore_unknown_fields, emit_unpopulated, omit_output_only
        ).transcode_text

        def convert_line(data: bytes) -> bytes:
            return transcode(data, message_type) + b"\n"

        return convert_line
    decode = _decoder(source_format, message_type, registry, ignore_unknown_fields)
    encode = _encoder(target_format, registry, emit_unpopulated, omit_output_only)

    def convert(data: bytes) -> bytes:
        return encode(decode(data))

    return convert


# --- progress and errors ------------------------------------------------------------------


class Reporter:
    """Error lines and, on a terminal, a one-line progress display, on one stream.

    The progress line is rewritten in place with ``\\r`` at most every ``interval`` seconds,
    and the clock is read only every ``check_every`` records, so that a fast conversion
    pays one modulo per record for it. Before an error line, and at the end, the progress
    line is ended with a newline so the two never share a line. When the stream is not a
    terminal only error lines are written.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        prog: str = "v1op",
        clock: Callable[[], float] = time.monotonic,
        interval: float = 0.2,
        check_every: int = 64,
    ) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._prog = prog
        self._clock = clock
        self._interval = interval
        self._check_every = check_every
        self.live = self._stream.isatty()
        self._started = clock()
        self._drawn_at = self._started
        self._width = 0  # of the progress text now on the line; 0 when none is

    def tick(self, records: int, skipped: int) -> None:
        """Called once per record read, with the counts so far."""
        if not self.live or records % self._check_every:
            return
        now = self._clock()
        if now - self._drawn_at >= self._interval:
            self._draw(records, skipped, now)

    def error(self, where: str, error: Exception) -> None:
        self._end_line()
        self._stream.write(f"{self._prog}: {where}: {error}\n")
        self._stream.flush()

    def finish(self, records: int, skipped: int) -> None:
        """Show the final counts and end the progress line (terminal only)."""
        if self.live:
            self._draw(records, skipped, self._clock())
            self._end_line()

    def _draw(self, records: int, skipped: int, now: float) -> None:
        elapsed = now - self._started
        rate = records / elapsed if elapsed > 0 else 0.0
        text = f"{self._prog}: {records:,} records, {rate:,.0f}/s, {skipped:,} skipped"
        # Pad over a longer previous text: the rate can shrink.
        self._stream.write("\r" + text.ljust(self._width))
        self._stream.flush()
        self._width = len(text)
        self._drawn_at = now

    def _end_line(self) -> None:
        if self._width:
            self._stream.write("\n")
            self._width = 0


# --- the conversion loop ------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """What a conversion did. ``stopped``: it ended at a bad record, before the input did."""

    records: int
    written: int
    skipped: int
    stopped: bool
    unknown_type: bool  # some error was an Any of a type nobody registered


def convert_stream(
    source: BinaryIO,
    sink: BinaryIO,
    *,
    source_format: str,
    target_format: str,
    name: str = "<stdin>",
    message_type: type[Message] = Operation,
    registry: TypeRegistry | None = None,
    ignore_unknown_fields: bool = False,
    emit_unpopulated: bool = False,
    omit_output_only: bool = False,
    skip_invalid: bool = False,
    limit: int = MAX_RECORD_BYTES,
    reporter: Reporter | None = None,
) -> Summary:
    """Convert every record of ``source`` (``ndjson`` or ``delimited``) into ``sink``.

    Each record is written as soon as it is converted. A bad record is reported through
    ``reporter`` as ``<name>:<line>: <error>`` (``<name>: record <n> at byte <offset>:``
    for delimited input); it stops the conversion unless ``skip_invalid``. The sink is
    flushed, not closed.
    """
    for fmt in (source_format, target_format):
        if fmt not in _FORMATS:
            raise ValueError(f"not a streaming format: {fmt!r} (expected one of {STREAM_FORMATS})")
    read, locate = _FORMATS[source_format]
    convert = _converter(
        source_format,
        target_format,
        message_type,
        registry,
        ignore_unknown_fields,
        emit_unpopulated,
        omit_output_only,
    )
    reporter = reporter if reporter is not None else Reporter()
    # Off a terminal the progress display draws nothing: skip its call per record.
    tick = reporter.tick if reporter.live else None
    write = sink.write
    records = written = skipped = 0
    stopped = unknown_type = False
    try:
        for number, offset, item in read(source, limit):
            records += 1
            if tick is not None:
                tick(records, skipped)
            error: ValueError
            if item.__class__ is bytes:
                try:
                    write(convert(item))
                except ConversionError as e:
                    error = e
                else:
                    written += 1
                    continue
            else:
                error = item  # type: ignore[assignment]
            reporter.error(locate(name, number, offset), error)
            unknown_type = unknown_type or isinstance(error.__cause__, UnknownTypeError)
            if not skip_invalid or isinstance(error, BrokenStream):
                stopped = True
                break
            skipped += 1
    finally:
        # Whatever ends the loop, what was converted reaches the sink and the progress
        # line is ended before anyone else writes to the terminal.
        try:
            sink.flush()
        finally:
            reporter.finish(records, skipped)
    return Summary(records, written, skipped, stopped, unknown_type)
