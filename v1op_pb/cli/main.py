"""The ``v1op`` command: its parser and ``main``."""

from __future__ import annotations

import argparse
import importlib.metadata
import logging
import sys
from collections.abc import Sequence

from .._errors import ConversionError
from .._registry import UnknownTypeError, unknown_type_of
from .common import EXIT_ERROR, UNKNOWN_TYPE_HINT, silence_stdout
from .completion import add_completion_command
from .convert import add_convert_command
from .environment import resolve_environment, with_environment
from .operations import add_operation_commands
from .operator import JsonArgumentError, add_operator_commands
from .schema import add_schema_commands
from .serve import add_serve_commands

__all__ = ["main"]

# The optional extras, by the top-level module each brings.
_EXTRA_OF = {
    "grpc": "grpc",
    "grpc_status": "grpc",
    "grpc_health": "grpc",
    "grpc_reflection": "grpc",
    "google.api_core": "grpc",
    "aiohttp": "rest",
    "jwt": "auth",
    "cryptography": "auth",
    "prometheus_client": "metrics",
    "opentelemetry": "otel",
}


def _version() -> str:
    try:
        return importlib.metadata.version("v1op-pb")
    except importlib.metadata.PackageNotFoundError:
        return "(version unknown: the package is not installed)"


def _codec_in_use() -> str:
    """Which JSON codec converts: the native C core, or the pure-Python one and why."""
    from .._codec import jsontext, native_enabled

    if native_enabled():
        return "native (C core)"
    if jsontext._native is None:
        return "pure Python (the C core is not built)"
    return f"pure Python ({jsontext.PURE_PYTHON_VARIABLE}=1)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="v1op", description="Work with long-running Operations as protobuf messages."
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"v1op {_version()}, JSON codec: {_codec_in_use()}",
        help="print the version and which JSON codec is in use, and exit",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_convert_command(commands)
    add_serve_commands(commands)
    add_operation_commands(commands)
    add_schema_commands(commands)
    add_operator_commands(commands)
    add_completion_command(commands, parser)
    # The servers' options, as a deployment sets them (systemd, containers): V1OP_<OPTION>.
    for server in ("serve", "gateway"):
        with_environment(commands.choices[server])
    return parser


def _report(args: argparse.Namespace, text: str) -> None:
    """One error line on stderr: through the logging a server command set up (its text or
    JSON lines), else printed."""
    if getattr(args, "logging", None) is not None:
        logging.getLogger("v1op").error("%s", text)
    else:
        print(f"v1op: {text}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # As given: ``serve --workers`` starts its workers with the same command line.
    args.argv = list(sys.argv[1:] if argv is None else argv)
    check = getattr(args, "check", None)
    if check is not None:
        check(args)
    try:
        resolve_environment(args)
        return int(args.run(args))
    except BrokenPipeError:
        # The reader went away (`v1op list | head`): stop quietly, as a filter does.
        silence_stdout()
        return EXIT_ERROR
    except ModuleNotFoundError as e:
        name = e.name or ""
        extra = next((x for m, x in _EXTRA_OF.items() if (name + ".").startswith(m + ".")), None)
        if extra is None:
            _report(args, str(e))
        else:
            _report(
                args,
                f"{args.command} needs {e.name}, which is not installed: "
                f"pip install 'v1op-pb[{extra}]'",
            )
    except JsonArgumentError as e:
        print(f"v1op: {e}", file=sys.stderr)
        if unknown_type_of(e.error) is not None:
            print(UNKNOWN_TYPE_HINT, file=sys.stderr)
    except ConversionError as e:
        if args.command == "convert":
            where = "<stdin>" if args.file == "-" else args.file
        else:
            where = getattr(args, "name", "response")
        print(f"v1op: {where}: {e}", file=sys.stderr)
        if isinstance(e.__cause__, UnknownTypeError):
            print(UNKNOWN_TYPE_HINT, file=sys.stderr)
    except (OSError, ValueError, TypeError, UnknownTypeError, ImportError) as e:
        _report(args, str(e))
    finally:
        setup = getattr(args, "logging", None)
        if setup is not None:  # serve and gateway: their lines written, the logging put back
            setup.restore()
    return EXIT_ERROR
