"""What the commands of ``v1op`` share: exit statuses, the type options and the registry
they build, and opening files or the standard streams."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from typing import BinaryIO

from .._registry import TypeRegistry

__all__ = [
    "EXIT_ERROR",
    "EXIT_NOT_DONE",
    "EXIT_SKIPPED",
    "UNKNOWN_TYPE_HINT",
    "add_type_options",
    "open_input",
    "open_output",
    "read_file",
    "registry_from",
    "silence_stdout",
    "write_file",
]

EXIT_ERROR = 2
EXIT_SKIPPED = 1  # v1op convert --skip-invalid: some records were bad and left out
EXIT_NOT_DONE = 1  # v1op wait: the operation was not done when the timeout ran out
UNKNOWN_TYPE_HINT = (
    "v1op: hint: make the type known with --import <generated module> or --descriptor-set <file>"
)


def add_type_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="register the messages of a generated _pb2 module, for Any payloads (repeatable)",
    )
    command.add_argument(
        "--descriptor-set",
        action="append",
        default=[],
        metavar="FILE",
        help="load message types from a FileDescriptorSet (protoc --descriptor_set_out)",
    )


def registry_from(args: argparse.Namespace) -> TypeRegistry:
    registry = TypeRegistry()
    if args.imports and os.getcwd() not in sys.path and "" not in sys.path:
        # As `python -m` would: a console script's sys.path lacks the current folder, where
        # the user's generated modules usually are. Last, so it shadows nothing installed.
        sys.path.append(os.getcwd())
    for module in args.imports:
        registry.register_module(module)
    for path in args.descriptor_set:
        registry.add_descriptor_set(path)
    return registry


@contextlib.contextmanager
def open_input(path: str) -> Iterator[BinaryIO]:
    if path == "-":
        yield sys.stdin.buffer
        return
    with open(path, "rb") as f:
        yield f


@contextlib.contextmanager
def open_output(path: str) -> Iterator[BinaryIO]:
    if path == "-":
        yield sys.stdout.buffer
        return
    with open(path, "wb") as f:
        yield f


def silence_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's final flush of what is still
    buffered for the closed pipe does not print a second BrokenPipeError."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass  # stdout is not a file descriptor (captured in tests): nothing will flush


def read_file(path: str) -> bytes:
    with open_input(path) as source:
        return source.read()


def write_file(path: str, data: bytes) -> None:
    with open_output(path) as sink:
        sink.write(data)
        sink.flush()
