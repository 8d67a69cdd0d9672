"""The ``v1op`` command: its parser and ``main``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .._errors import ConversionError
from .._registry import UnknownTypeError
from .common import EXIT_ERROR, UNKNOWN_TYPE_HINT
from .convert import add_convert_command
from .operations import add_operation_commands
from .serve import add_serve_commands

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="v1op", description="Work with long-running Operations as protobuf messages."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_convert_command(commands)
    add_serve_commands(commands)
    add_operation_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    check = getattr(args, "check", None)
    if check is not None:
        check(args)
    try:
        return args.run(args)
    except ConversionError as e:
        if args.command == "convert":
            where = "<stdin>" if args.file == "-" else args.file
        else:
            where = getattr(args, "name", "response")
        print(f"v1op: {where}: {e}", file=sys.stderr)
        if isinstance(e.__cause__, UnknownTypeError):
            print(UNKNOWN_TYPE_HINT, file=sys.stderr)
    except (OSError, ValueError, TypeError, UnknownTypeError, ImportError) as e:
        print(f"v1op: {e}", file=sys.stderr)
    return EXIT_ERROR
