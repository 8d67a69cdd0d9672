"""The server's stderr: every line in one format, text or JSON, written by a thread of its
own so that a slow stderr never holds up the event loop.

``configure_logging(log_format)`` sends every logger's records (the server's, aiohttp's,
psycopg's, asyncio's, Python's warnings and uncaught exceptions) through one
``BackgroundHandler``. In ``json`` each line is one JSON object (``time``, ``level``,
``logger``, ``message``, and an access line's fields); in ``text`` it reads ``v1op:
<message>`` as the server's lines always have, an access line followed by its fields as
``key=value`` pairs. The gRPC C core writes to the file descriptor itself, past Python's
logging: the command line silences it (``GRPC_VERBOSITY``) before grpc is imported.
"""

from __future__ import annotations

import atexit
import collections
import logging
import re
import sys
import threading
import time
import warnings
from collections.abc import Mapping
from types import TracebackType
from typing import IO, Any

import orjson

__all__ = [
    "ACCESS_LOGGER",
    "LOG_FORMATS",
    "BackgroundHandler",
    "LineFormatter",
    "LoggingSetup",
    "configure_logging",
    "flush_logs",
    "iso_time",
]

LOG_FORMATS = ("text", "json")
# The logger of the access log: one record a call, its fields in ``record.fields``.
ACCESS_LOGGER = "v1op.access"
# Lines waiting for stderr; past this many the newest are dropped (and counted) rather than
# let a stalled stderr grow the server's memory without bound.
QUEUE_LINES = 10_000
# How many waiting lines the writer joins into one write.
_WRITE_BATCH = 256
# How long the writer, woken by a line, waits for more before it writes.
BATCH_SECONDS = 0.01
_STOP = object()


_second_text: tuple[int, str] = (-1, "")


def iso_time(seconds: float) -> str:
    """RFC 3339 in UTC with milliseconds: ``2026-05-01T10:00:00.123Z``."""
    global _second_text
    whole = int(seconds)
    millis = int((seconds - whole) * 1000)
    cached_second, text = _second_text
    if cached_second != whole:  # one strftime a second, not one a line
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        _second_text = (whole, text)
    return f"{text}.{millis:03d}Z"


class LineFormatter(logging.Formatter):
    """A record as one line of ``text`` or ``json`` (a traceback, in text, follows on the
    lines after it)."""

    def __init__(self, log_format: str) -> None:
        if log_format not in LOG_FORMATS:
            raise ValueError(f"log format {log_format!r}: give one of {', '.join(LOG_FORMATS)}")
        super().__init__()
        self.json = log_format == "json"

    def format(self, record: logging.LogRecord) -> str:
        fields: Mapping[str, Any] | None = getattr(record, "fields", None)
        message = record.getMessage()
        if self.json:
            line: dict[str, Any] = {
                "time": iso_time(record.created),
                "level": record.levelname.lower(),
                "logger": record.name,
                "message": message,
            }
            if fields:
                for key, value in fields.items():
                    line.setdefault(key, value)  # never in place of the four above
            if record.exc_info:
                line["exception"] = self.formatException(record.exc_info)
            return orjson.dumps(line).decode("utf-8")
        if record.name != "v1op" and not record.name.startswith("v1op."):
            message = f"{record.name}: {message}"
        if record.levelno == logging.WARNING:
            message = f"WARNING: {message}"
        if fields:
            message = f"{message} {logfmt(fields)}"
        text = f"v1op: {message}"
        if record.exc_info:
            text = f"{text}\n{self.formatException(record.exc_info)}"
        return text


def logfmt(fields: Mapping[str, Any]) -> str:
    """``key=value`` pairs; a value with spaces, quotes or an ``=`` quoted as JSON, an
    absent one ``-``."""
    parts = []
    for key, value in fields.items():
        if value is None or value == "":
            text = "-"
        elif isinstance(value, str):
            text = value if _BARE.match(value) else orjson.dumps(value).decode("utf-8")
        else:
            text = str(value)
        parts.append(f"{key}={text}")
    return " ".join(parts)


# What a logfmt value may be without quotes: printable ASCII but space, '"', '=' and '\'.
_BARE = re.compile(r"[!#-<>-\[\]-~]+\Z")


class BackgroundHandler(logging.Handler):
    """Takes records from any thread at the cost of a deque append; a daemon thread formats
    and writes them, waking once for all that came in the BATCH_SECONDS after the first:
    under load, one write and one thread switch for many lines rather than one per line.
    Lines that find ``capacity`` lines waiting are dropped, and a line says how many once
    the writer catches up."""

    def __init__(self, stream: IO[str] | None = None, capacity: int = QUEUE_LINES) -> None:
        """``stream``: by default whatever ``sys.stderr`` is when a line is written."""
        super().__init__()
        self._stream = stream
        self._capacity = capacity
        self._waiting: collections.deque[object] = collections.deque()
        self._wake = threading.Event()
        self._dropped = 0
        self._dropped_lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._write, name="v1op-log-writer", daemon=True)
        self._thread.start()

    def emit(self, record: logging.LogRecord) -> None:
        # deque appends are atomic: a lock only on the (rare) way of a drop.
        if len(self._waiting) >= self._capacity:
            with self._dropped_lock:
                self._dropped += 1
            return
        self._put(record)

    def _put(self, item: object) -> None:
        self._waiting.append(item)
        if not self._wake.is_set():
            self._wake.set()

    def _write(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            time.sleep(BATCH_SECONDS)  # let the lines of a busy moment come together
            if self._drain():
                return

    def _drain(self) -> bool:
        """Write what is waiting; True once the stop has come."""
        lines: list[str] = []
        written: list[threading.Event] = []
        stop = False
        while self._waiting:
            item = self._waiting.popleft()
            if item is _STOP:
                stop = True
            elif isinstance(item, threading.Event):
                self._emit_lines(lines)
                lines = []
                written.append(item)
            else:
                assert isinstance(item, logging.LogRecord)
                lines.append(self._line(item))
            if len(lines) >= _WRITE_BATCH:
                self._emit_lines(lines)
                lines = []
        with self._dropped_lock:
            dropped, self._dropped = self._dropped, 0
        if dropped:
            lines.append(self._line(_dropped_record(dropped)))
        self._emit_lines(lines)
        for marker in written:
            marker.set()
        return stop

    def _emit_lines(self, lines: list[str]) -> None:
        if not lines:
            return
        stream = self._stream if self._stream is not None else sys.stderr
        try:
            stream.write("\n".join(lines) + "\n")
            stream.flush()
        except (OSError, ValueError):
            pass  # stderr is gone (closed, a broken pipe): nowhere to say so

    def _line(self, record: logging.LogRecord) -> str:
        try:
            return self.format(record)
        except Exception as e:  # a record whose message cannot be made: say so, go on
            return self.format(
                logging.makeLogRecord(
                    {
                        "name": "v1op",
                        "levelno": logging.ERROR,
                        "levelname": "ERROR",
                        "msg": f"a log line of {record.name} could not be written: {e!r}",
                    }
                )
            )

    def flush(self, timeout: float = 5.0) -> None:
        """Wait, up to ``timeout`` seconds, until the lines taken so far are written."""
        if self._closed or not self._thread.is_alive():
            return
        marker = threading.Event()
        self._put(marker)
        marker.wait(timeout)

    def close(self) -> None:
        """Write every line taken so far, then stop the writer."""
        if self._closed:
            return
        self._closed = True
        self._put(_STOP)
        self._thread.join(5.0)
        super().close()


def _dropped_record(count: int) -> logging.LogRecord:
    return logging.makeLogRecord(
        {
            "name": "v1op",
            "levelno": logging.WARNING,
            "levelname": "WARNING",
            "msg": f"{count} log lines dropped: stderr did not take them fast enough",
            "fields": {"dropped_lines": count},
        }
    )


_installed: BackgroundHandler | None = None


class LoggingSetup:
    """What ``configure_logging`` changed, to put back (``restore``) when the command that
    asked for it ends: a CLI process exits anyway, but a test that runs the command in its
    own process goes on."""

    def __init__(self, handler: BackgroundHandler) -> None:
        self.handler = handler
        root = logging.getLogger()
        self._handlers = list(root.handlers)
        self._root_level = root.level
        self._v1op_level = logging.getLogger("v1op").level
        self._excepthook = sys.excepthook
        self._threading_excepthook = threading.excepthook
        self._warnings_captured = warnings.showwarning is getattr(logging, "_showwarning", None)

    def restore(self) -> None:
        """Write every line taken, and put the logging back as it was."""
        global _installed
        root = logging.getLogger()
        root.removeHandler(self.handler)
        self.handler.close()
        if _installed is self.handler:
            _installed = None
        for handler in self._handlers:
            if handler not in root.handlers:
                root.addHandler(handler)
        root.setLevel(self._root_level)
        logging.getLogger("v1op").setLevel(self._v1op_level)
        sys.excepthook = self._excepthook
        threading.excepthook = self._threading_excepthook
        if not self._warnings_captured:
            logging.captureWarnings(False)


def configure_logging(log_format: str, stream: IO[str] | None = None) -> LoggingSetup:
    """Every log record of the process, and Python's warnings and uncaught exceptions, as
    lines of ``log_format`` on ``stream`` (by default whatever ``sys.stderr`` is when a line
    is written), written off the calling thread. The server's own loggers (``v1op.*``) say
    INFO and up, other libraries WARNING and up."""
    global _installed
    formatter = LineFormatter(log_format)
    handler = BackgroundHandler(stream)
    handler.setFormatter(formatter)
    setup = LoggingSetup(handler)
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("v1op").setLevel(logging.INFO)
    logging.captureWarnings(True)
    _installed = handler

    def log_uncaught(
        kind: type[BaseException], error: BaseException, trace: TracebackType | None
    ) -> None:
        logging.getLogger("v1op").critical("uncaught exception", exc_info=(kind, error, trace))

    def log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is None or isinstance(args.exc_value, SystemExit):
            return
        logging.getLogger("v1op").critical(
            "uncaught exception in thread %s",
            args.thread.name if args.thread is not None else "?",
            exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
        )

    sys.excepthook = log_uncaught
    threading.excepthook = log_uncaught_in_thread
    atexit.register(handler.close)
    return setup


def flush_logs() -> None:
    """Wait until every line logged so far is written: before a line on stdout that a
    reader acts on (the ready lines), so that what came before it is on stderr."""
    if _installed is not None:
        _installed.flush()
