"""The server's stderr lines: text and JSON, a writer thread that never holds up the caller
(a stream that takes nothing makes it drop lines and say how many), and a logging set-up
that a command puts back when it ends."""

from __future__ import annotations

import io
import json
import logging
import os
import sys
import threading
import warnings

import pytest

from v1op_pb.server.observe import BackgroundHandler, LineFormatter, configure_logging


def record(name: str = "v1op", level: int = logging.INFO, message: str = "hello", **extra):
    made = logging.LogRecord(name, level, __file__, 1, message, (), None)
    made.created = 1_780_000_000.25
    for key, value in extra.items():
        setattr(made, key, value)
    return made


ACCESS = {
    "time": "2026-05-28T20:26:40.250Z",
    "protocol": "grpc",
    "method": "/v1op.v1.OperationService/GetOperation",
    "code": "NOT_FOUND",
    "duration_ms": 0.5,
    "principal": None,
    "peer": "ipv4:127.0.0.1:5",
    "operation": "operations/x",
    "request_id": "r-1",
    "error": 'operation "x" = not found',
}


def test_text_lines():
    text = LineFormatter("text")
    assert text.format(record()) == "v1op: hello"
    assert text.format(record(level=logging.WARNING)) == "v1op: WARNING: hello"
    assert text.format(record(name="aiohttp.server")) == "v1op: aiohttp.server: hello"
    assert text.format(record(name="v1op.access", message="access", fields=ACCESS)) == (
        "v1op: access time=2026-05-28T20:26:40.250Z protocol=grpc "
        "method=/v1op.v1.OperationService/GetOperation code=NOT_FOUND duration_ms=0.5 "
        "principal=- peer=ipv4:127.0.0.1:5 operation=operations/x request_id=r-1 "
        'error="operation \\"x\\" = not found"'
    )


def test_json_lines():
    line = json.loads(LineFormatter("json").format(record(name="v1op.access", fields=ACCESS)))
    assert line == {
        "time": "2026-05-28T20:26:40.250Z",
        "level": "info",
        "logger": "v1op.access",
        "message": "hello",
        **{k: v for k, v in ACCESS.items() if k != "time"},
    }
    try:
        raise ValueError("boom")
    except ValueError:
        failed = record(level=logging.ERROR)
        failed.exc_info = sys.exc_info()
    line = json.loads(LineFormatter("json").format(failed))
    assert "ValueError: boom" in line["exception"] and "Traceback" in line["exception"]


def test_a_field_never_takes_the_place_of_the_lines_own():
    line = json.loads(
        LineFormatter("json").format(record(fields={"message": "x", "level": "y", "z": 1}))
    )
    assert (line["message"], line["level"], line["z"]) == ("hello", "info", 1)


def test_an_unknown_format_is_refused():
    with pytest.raises(ValueError, match="give one of text, json"):
        LineFormatter("yaml")


def test_a_stream_that_takes_nothing_costs_the_caller_nothing_and_drops_are_told():
    read, write = os.pipe()
    stream = os.fdopen(write, "w", encoding="utf-8")
    handler = BackgroundHandler(stream, capacity=10)
    handler.setFormatter(LineFormatter("json"))
    # Far more than the pipe and the queue hold: each emit returns at once.
    for i in range(2000):
        handler.emit(record(message=f"line {i} " + "x" * 200))
    reader = os.fdopen(read, "r", encoding="utf-8")
    lines: list[str] = []
    drained = threading.Thread(target=lambda: lines.extend(reader))
    drained.start()
    handler.close()
    stream.close()
    drained.join(30)
    parsed = [json.loads(line) for line in lines]
    told = [p for p in parsed if "dropped_lines" in p]
    assert told and told[0]["level"] == "warning"
    written = len(parsed) - len(told)
    assert written + sum(p["dropped_lines"] for p in told) == 2000


def test_flush_waits_until_what_was_taken_is_written():
    stream = io.StringIO()
    handler = BackgroundHandler(stream)
    handler.setFormatter(LineFormatter("text"))
    for i in range(100):
        handler.emit(record(message=f"line {i}"))
    handler.flush()
    assert stream.getvalue().splitlines()[-1] == "v1op: line 99"
    handler.close()


def test_configure_logging_takes_every_logger_warnings_and_thread_errors_and_puts_it_all_back():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    hooks = (sys.excepthook, threading.excepthook)
    stream = io.StringIO()
    setup = configure_logging("json", stream)
    try:
        logging.getLogger("psycopg.pool").warning("a library's warning")
        logging.getLogger("psycopg.pool").info("a library's chatter")  # below WARNING
        logging.getLogger("v1op.store").info("the server's own")
        warnings.warn("a Python warning", UserWarning, stacklevel=1)
        thread = threading.Thread(target=lambda: 1 / 0, name="failing")
        thread.start()
        thread.join()
        setup.handler.flush()
    finally:
        setup.restore()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    messages = [line["message"] for line in lines]
    assert "a library's warning" in messages
    assert "a library's chatter" not in messages
    assert "the server's own" in messages
    assert any("a Python warning" in m for m in messages)
    crashed = next(line for line in lines if line["message"].startswith("uncaught exception"))
    assert "ZeroDivisionError" in crashed["exception"] and crashed["level"] == "critical"
    assert root.handlers == handlers and root.level == level
    assert (sys.excepthook, threading.excepthook) == hooks
