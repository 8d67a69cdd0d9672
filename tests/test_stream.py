"""Streaming conversion: NDJSON and length-delimited binary, bad records, progress, memory."""

from __future__ import annotations

import gc
import io
import json
import re
import tracemalloc

import pytest
from factories import make_failed, make_running, make_succeeded
from google.rpc import error_details_pb2

from v1op_pb import Operation, from_json, to_binary, to_json
from v1op_pb._stream import (
    BadRecord,
    Reporter,
    Summary,
    convert_stream,
    encode_varint,
    read_delimited,
    read_ndjson,
)

BAD_DETAIL = json.dumps(
    {
        "name": "operations/bad",
        "done": True,
        "error": {
            "code": 3,
            "details": [
                {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "OK"},
                {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": 42},
            ],
        },
    }
)
BAD_DETAIL_ERROR = "$.error.details[1].reason: expected a string, got number 42"


def operations() -> list[Operation]:
    return [make_running(), make_succeeded(), make_failed()]


def ndjson(*lines: str) -> bytes:
    return "".join(line + "\n" for line in lines).encode("utf-8")


def ndjson_of(ops: list[Operation]) -> bytes:
    return ndjson(*(to_json(op) for op in ops))


def delimited_of(ops: list[Operation]) -> bytes:
    return b"".join(encode_varint(len(to_binary(op))) + to_binary(op) for op in ops)


class Tty(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self) -> bool:
        return True


class Clock:
    """A clock the test moves by hand; counts how often it is read."""

    def __init__(self) -> None:
        self.now = 0.0
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        return self.now


class NullSink(io.RawIOBase):
    """Swallows what is written: the memory test must not measure a growing output."""

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        return len(data)


def run(
    data: bytes,
    source_format: str = "ndjson",
    target_format: str = "ndjson",
    *,
    name: str = "ops",
    **options,
) -> tuple[Summary, bytes, str]:
    """Convert ``data``; the summary, the output and what was reported."""
    sink, errors = io.BytesIO(), io.StringIO()
    summary = convert_stream(
        io.BytesIO(data),
        sink,
        source_format=source_format,
        target_format=target_format,
        name=name,
        reporter=Reporter(errors),
        **options,
    )
    return summary, sink.getvalue(), errors.getvalue()


# --- conversions ---------------------------------------------------------------------------


def test_ndjson_round_trip():
    source = ndjson_of(operations())
    summary, out, err = run(source)
    assert (summary, out, err) == (Summary(3, 3, 0, False, False), source, "")
    assert [from_json(line) for line in out.splitlines()] == operations()


def test_ndjson_output_is_compact_whatever_the_input_spacing():
    pretty = json.dumps(json.loads(to_json(make_failed())), indent=None, separators=(", ", ": "))
    _, out, _ = run(ndjson(pretty))
    assert out == ndjson_of([make_failed()])


def test_a_line_stays_one_line_whatever_the_strings_hold():
    op = Operation(name="operations/a\nb\r\u2028\u2029\x85c")
    _, out, _ = run(delimited_of([op]), "delimited", "ndjson")
    assert out.count(b"\n") == 1
    assert out.endswith(b"\n")
    assert run(out, "ndjson", "delimited")[1] == delimited_of([op])


def test_ndjson_to_delimited_and_back():
    source = ndjson_of(operations())
    _, binary, _ = run(source, "ndjson", "delimited")
    assert binary == delimited_of(operations())
    _, back, _ = run(binary, "delimited", "ndjson")
    assert back == source


def test_delimited_to_delimited_is_identical():
    binary = delimited_of(operations())
    summary, out, _ = run(binary, "delimited", "delimited")
    assert out == binary
    assert summary.written == 3


def test_empty_input():
    assert run(b"")[:2] == (Summary(0, 0, 0, False, False), b"")
    assert run(b"", "delimited", "ndjson")[:2] == (Summary(0, 0, 0, False, False), b"")


def test_empty_messages_in_delimited_form_are_a_zero_length():
    _, out, _ = run(ndjson("{}", "{}"), "ndjson", "delimited")
    assert out == b"\x00\x00"
    assert run(out, "delimited", "ndjson")[1] == ndjson("{}", "{}")


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, b"\x00"),
        (1, b"\x01"),
        (127, b"\x7f"),
        (128, b"\x80\x01"),
        (300, b"\xac\x02"),
        (2**64 - 1, b"\xff" * 9 + b"\x01"),
    ],
)
def test_varint_is_protobufs(value, encoded):
    assert encode_varint(value) == encoded
    # Read back as a length prefix with no payload after it: the length is in the message.
    (item,) = [item for _, _, item in read_delimited(io.BytesIO(encoded))]
    if value:
        assert f" {value} bytes" in str(item)
    else:
        assert item == b""


def test_blank_lines_are_skipped_but_counted():
    source = b"\n  \n" + ndjson(to_json(make_running())) + b"\t\r\n\n" + b'{"done": "x"}\n'
    summary, out, err = run(source)
    assert out == ndjson_of([make_running()])
    assert err.startswith("v1op: ops:6: $.done: ")
    assert summary == Summary(2, 1, 0, True, False)


def test_form_feed_is_not_json_whitespace():
    summary, _, err = run(b"\x0c\n")
    assert summary.stopped
    assert err.startswith("v1op: ops:1: $: not valid JSON")


def test_crlf_lines_and_a_last_line_without_newline():
    source = b'{"name": "operations/a"}\r\n{"name": "operations/b"}'
    _, out, err = run(source)
    assert out == ndjson('{"name":"operations/a"}', '{"name":"operations/b"}')
    assert err == ""


def test_options_apply_to_every_record():
    source = ndjson('{"name": "operations/a", "colour": "red"}', '{"name": "operations/b"}')
    _, out, _ = run(source, ignore_unknown_fields=True, emit_unpopulated=True)
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["name"] for line in lines] == ["operations/a", "operations/b"]
    assert all(line["done"] is False and line["creator"] == "" for line in lines)
    _, out, _ = run(ndjson_of(operations()), omit_output_only=True)
    assert all("name" not in json.loads(line) for line in out.splitlines())


def test_another_message_type():
    source = ndjson('{"reason": "R"}', '{"domain": "d"}')
    _, out, _ = run(source, "ndjson", "delimited", message_type=error_details_pb2.ErrorInfo)
    expected = [error_details_pb2.ErrorInfo(reason="R"), error_details_pb2.ErrorInfo(domain="d")]
    assert out == delimited_of(expected)


def test_not_a_streaming_format():
    with pytest.raises(ValueError, match=re.escape("not a streaming format: 'json'")):
        run(b"", "json", "ndjson")


# --- bad records ---------------------------------------------------------------------------


def test_a_bad_line_stops_the_conversion_with_its_line_number():
    source = ndjson(to_json(make_running()), to_json(make_succeeded()), BAD_DETAIL) + ndjson_of(
        [make_failed()]
    )
    summary, out, err = run(source)
    assert out == ndjson_of([make_running(), make_succeeded()])
    assert err == f"v1op: ops:3: {BAD_DETAIL_ERROR}\n"
    assert summary == Summary(3, 2, 0, True, False)


def test_skip_invalid_reports_every_bad_line_and_writes_the_good_ones():
    source = ndjson(
        to_json(make_running()),
        BAD_DETAIL,
        to_json(make_succeeded()),
        '{"done": "yes"}',
        to_json(make_failed()),
    )
    summary, out, err = run(source, name="<stdin>", skip_invalid=True)
    assert out == ndjson_of(operations())
    assert err == (
        f"v1op: <stdin>:2: {BAD_DETAIL_ERROR}\n"
        "v1op: <stdin>:4: $.done: expected true or false, got string 'yes'\n"
    )
    assert summary == Summary(5, 3, 2, False, False)


def test_invalid_utf8_is_a_bad_line():
    summary, _, err = run(b'{"name": "operations/\xff"}\n', skip_invalid=True)
    assert err == "v1op: ops:1: $: input is not UTF-8: invalid byte at offset 21\n"
    assert summary.skipped == 1


def test_an_unknown_any_type_is_flagged_for_the_hint():
    line = json.dumps({"metadata": {"@type": "type.googleapis.com/acme.v9.Progress"}})
    summary, _, err = run(ndjson(line))
    assert "acme.v9.Progress" in err
    assert summary.unknown_type


class Recording(io.BytesIO):
    """Remembers the largest piece read at once, to show a long line is never held whole."""

    largest = 0

    def readline(self, size=-1) -> bytes:
        line = super().readline(size)
        self.largest = max(self.largest, len(line))
        return line


def test_an_over_long_line_is_a_bad_record_read_in_bounded_pieces():
    huge = '{"name": "' + "x" * 1_000_000 + '"}'
    exactly = '{"name": "' + "y" * 78 + '"}'  # 90 bytes: the limit
    source = Recording(
        ndjson('{"name": "operations/a"}', huge, exactly, '{"name": "operations/b"}')
    )
    sink, errors = io.BytesIO(), io.StringIO()
    summary = convert_stream(
        source,
        sink,
        source_format="ndjson",
        target_format="ndjson",
        name="ops",
        limit=90,
        skip_invalid=True,
        reporter=Reporter(errors),
    )
    assert errors.getvalue() == "v1op: ops:2: line is longer than the limit of 90 bytes\n"
    assert [json.loads(line)["name"] for line in sink.getvalue().splitlines()] == [
        "operations/a",
        "y" * 78,
        "operations/b",
    ]
    assert summary == Summary(4, 3, 1, False, False)
    assert source.largest <= 64 * 1024


def test_over_long_line_at_the_end_without_newline():
    summary, _, err = run(b'{"name": "a"}\n' + b"z" * 100, limit=50)
    assert err == "v1op: ops:2: line is longer than the limit of 50 bytes\n"
    assert summary == Summary(2, 1, 0, True, False)


def test_bad_delimited_record_names_its_number_and_offset():
    good = delimited_of([make_running()])
    source = good + b"\x01\x0f" + good
    summary, out, err = run(source, "delimited", "ndjson", skip_invalid=True)
    assert err.startswith(
        f"v1op: ops: record 2 at byte {len(good)}: $: not a valid binary v1op.v1.Operation"
    )
    assert out == ndjson_of([make_running(), make_running()])
    assert summary == Summary(3, 2, 1, False, False)


@pytest.mark.parametrize("skip_invalid", [False, True])
def test_truncated_payload(skip_invalid):
    whole = delimited_of(operations())
    cut = len(whole) - 5
    last = len(delimited_of(operations()[:2]))
    length = len(to_binary(make_failed()))
    prefix = len(encode_varint(length))
    summary, out, err = run(whole[:cut], "delimited", "delimited", skip_invalid=skip_invalid)
    assert out == delimited_of(operations()[:2])
    assert err == (
        f"v1op: ops: record 3 at byte {last}: truncated: the length prefix says {length} "
        f"bytes, but the input ends after {cut - last - prefix}\n"
    )
    # Nothing follows a cut: skipping it converts everything there is.
    assert summary == Summary(3, 2, int(skip_invalid), not skip_invalid, False)


def test_truncated_length_prefix():
    good = delimited_of([make_running()])
    summary, out, err = run(good + b"\x80", "delimited", "ndjson")
    assert err == (
        f"v1op: ops: record 2 at byte {len(good)}: "
        "truncated: the input ends inside the length prefix\n"
    )
    assert out == ndjson_of([make_running()])
    assert summary == Summary(2, 1, 0, True, False)


@pytest.mark.parametrize("prefix", [b"\xff" * 11, b"\xff" * 9 + b"\x7f"])
def test_malformed_length_prefix_stops_even_when_skipping(prefix):
    good = delimited_of([make_running()])
    summary, _, err = run(good + prefix + good, "delimited", "ndjson", skip_invalid=True)
    assert err == (
        f"v1op: ops: record 2 at byte {len(good)}: "
        "malformed length prefix: not a varint of at most 64 bits\n"
    )
    assert summary == Summary(2, 1, 0, True, False)


def test_over_long_delimited_record_is_skipped_unread():
    small = delimited_of([Operation(name="operations/a")])
    big = delimited_of([Operation(name="x" * 500)])
    summary, out, err = run(
        small + big + small, "delimited", "ndjson", limit=100, skip_invalid=True
    )
    assert err == (
        f"v1op: ops: record 2 at byte {len(small)}: "
        "a record of 503 bytes is longer than the limit of 100 bytes\n"
    )
    assert out == ndjson('{"name":"operations/a"}', '{"name":"operations/a"}')
    assert summary == Summary(3, 2, 1, False, False)


def test_over_long_and_cut_short():
    big = delimited_of([Operation(name="x" * 500)])
    summary, _, err = run(big[:-3], "delimited", "ndjson", limit=100, skip_invalid=True)
    assert err == (
        "v1op: ops: record 1 at byte 0: a record of 503 bytes is longer than the limit of "
        "100 bytes, and the input ends after 500 of them\n"
    )
    assert summary == Summary(1, 0, 1, False, False)


def test_readers_yield_bad_records_rather_than_raise():
    items = list(read_ndjson(io.BytesIO(b"a\n" + b"b" * 10 + b"\nc"), limit=5))
    assert [(n, off) for n, off, _ in items] == [(1, 0), (2, 2), (3, 13)]
    assert isinstance(items[1][2], BadRecord)
    assert [item for _, _, item in items if not isinstance(item, BadRecord)] == [b"a\n", b"c"]


class Trickle(io.RawIOBase):
    """A pipe that hands out at most three bytes per read."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def read(self, size=-1) -> bytes:
        return self._data.read(min(size, 3) if size >= 0 else 3)


def test_short_reads_from_a_pipe_are_not_truncation():
    binary = delimited_of(operations())
    records = [item for _, _, item in read_delimited(Trickle(binary))]  # type: ignore[arg-type]
    assert records == [to_binary(op) for op in operations()]


# --- progress ------------------------------------------------------------------------------


def test_progress_is_drawn_in_place_on_a_terminal():
    out, clock = Tty(), Clock()
    reporter = Reporter(out, clock=clock, check_every=10)
    reads = clock.reads
    for n in range(1, 10):
        reporter.tick(n, 0)
    assert clock.reads == reads  # the clock is read only every check_every records
    clock.now = 0.1
    reporter.tick(10, 0)
    assert out.getvalue() == ""  # too soon after the start
    clock.now = 0.5
    reporter.tick(20, 0)
    assert out.getvalue() == "\rv1op: 20 records, 40/s, 0 skipped"
    clock.now = 0.6
    reporter.tick(30, 0)
    assert out.getvalue() == "\rv1op: 20 records, 40/s, 0 skipped"  # 0.1 s since the last
    clock.now = 4.0
    reporter.tick(4000, 2)
    assert out.getvalue().endswith("\rv1op: 4,000 records, 1,000/s, 2 skipped")
    clock.now = 400.0
    reporter.finish(4000, 2)
    # The rate shrank: the shorter text is padded over the longer one, then the line ends.
    assert out.getvalue().endswith("\rv1op: 4,000 records, 10/s, 2 skipped   \n")


def test_an_error_line_never_shares_the_progress_line():
    out, clock = Tty(), Clock()
    reporter = Reporter(out, clock=clock, check_every=1)
    clock.now = 1.0
    reporter.tick(5, 0)
    reporter.error("ops:6", ValueError("bad"))
    reporter.error("ops:7", ValueError("worse"))
    clock.now = 2.0
    reporter.finish(7, 2)
    assert out.getvalue() == (
        "\rv1op: 5 records, 5/s, 0 skipped\n"
        "v1op: ops:6: bad\n"
        "v1op: ops:7: worse\n"
        "\rv1op: 7 records, 4/s, 2 skipped\n"
    )


def test_no_progress_when_not_a_terminal():
    out, clock = io.StringIO(), Clock()
    reporter = Reporter(out, clock=clock, check_every=1)
    clock.now = 10.0
    reporter.tick(100, 0)
    reporter.error("ops:101", ValueError("bad"))
    reporter.finish(101, 1)
    assert out.getvalue() == "v1op: ops:101: bad\n"


def test_progress_during_a_conversion():
    out, clock = Tty(), Clock()
    source = ndjson_of([make_running()] * 4) + b'{"done": 1}\n' + ndjson_of([make_running()] * 3)

    class Ticking(io.BytesIO):
        def readline(self, size=-1) -> bytes:
            clock.now += 0.125  # each line takes an eighth of a second
            return super().readline(size)

    summary = convert_stream(
        Ticking(source),
        io.BytesIO(),
        source_format="ndjson",
        target_format="ndjson",
        skip_invalid=True,
        reporter=Reporter(out, clock=clock, check_every=2),
    )
    assert summary == Summary(8, 7, 1, False, False)
    assert out.getvalue() == (
        "\rv1op: 2 records, 8/s, 0 skipped"
        "\rv1op: 4 records, 8/s, 0 skipped\n"
        "v1op: <stdin>:5: $.done: expected true or false, got number 1\n"
        "\rv1op: 6 records, 8/s, 1 skipped"
        "\rv1op: 8 records, 8/s, 1 skipped"
        "\rv1op: 8 records, 7/s, 1 skipped\n"
    )


# --- memory --------------------------------------------------------------------------------


def peak_memory(lines: int) -> int:
    """The traced peak while converting ``lines`` lines, every tenth one bad and skipped."""
    good = b'{"name": "operations/7f3c", "done": true}\n'
    bad = b'{"name": "operations/7f3c", "done": "maybe"}\n'
    source = io.BytesIO((good * 9 + bad) * (lines // 10))
    # Garbage left by earlier tests would be freed at an unpredictable point of the run.
    gc.collect()
    tracemalloc.start()
    try:
        summary = convert_stream(
            source,
            NullSink(),  # type: ignore[arg-type]
            source_format="ndjson",
            target_format="delimited",
            skip_invalid=True,
            reporter=Reporter(NullText()),
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert summary.skipped == lines // 10
    return peak


class NullText(io.TextIOBase):
    def write(self, text: str) -> int:
        return len(text)


def test_memory_does_not_grow_with_the_input():
    peak_memory(100)  # warm up: caches of compiled message plans are filled once
    small, large = peak_memory(2_000), peak_memory(20_000)
    assert large < 2 * small, (small, large)
