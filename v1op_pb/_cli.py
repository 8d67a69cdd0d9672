"""The ``v1op`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import BinaryIO

from google.protobuf.message import Message

from ._errors import ConversionError
from ._formats import from_binary, from_text, to_binary, to_text
from ._json import from_json, to_json
from ._operation import Operation
from ._registry import TypeRegistry, UnknownTypeError

FORMATS = ("json", "binary", "text")
EXIT_ERROR = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="v1op", description="Work with long-running Operations as protobuf messages."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    convert = commands.add_parser(
        "convert",
        help="convert a message between JSON, binary protobuf and text format",
        description="Convert one message (an Operation unless --type says otherwise) between "
        "the documented JSON shape, binary protobuf and protobuf text format.",
    )
    convert.add_argument("--from", dest="source", choices=FORMATS, required=True)
    convert.add_argument("--to", dest="target", choices=FORMATS, required=True)
    convert.add_argument("file", nargs="?", default="-", help="input file (default: stdin)")
    convert.add_argument("-o", "--output", default="-", help="output file (default: stdout)")
    convert.add_argument(
        "--type",
        default=Operation.DESCRIPTOR.full_name,
        help="full name of the message type (default: %(default)s)",
    )
    convert.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="register the messages of a generated _pb2 module, for Any payloads (repeatable)",
    )
    convert.add_argument(
        "--descriptor-set",
        action="append",
        default=[],
        metavar="FILE",
        help="load message types from a FileDescriptorSet (protoc --descriptor_set_out)",
    )
    convert.add_argument("--ignore-unknown-fields", action="store_true")
    convert.add_argument(
        "--emit-unpopulated",
        action="store_true",
        help="JSON output: write every field, as a gRPC-to-REST gateway does by default",
    )
    convert.add_argument(
        "--omit-output-only",
        action="store_true",
        help="JSON output: the request form, without OUTPUT_ONLY fields",
    )
    convert.add_argument("--indent", type=int, default=None, help="JSON output: indent")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _convert(args)
    except ConversionError as e:
        where = "<stdin>" if args.file == "-" else args.file
        print(f"v1op: {where}: {e}", file=sys.stderr)
        if isinstance(e.__cause__, UnknownTypeError):
            print(
                "v1op: hint: make the type known with --import <generated module> or "
                "--descriptor-set <file>",
                file=sys.stderr,
            )
    except (OSError, ValueError, TypeError, UnknownTypeError, ImportError) as e:
        print(f"v1op: {e}", file=sys.stderr)
    return EXIT_ERROR


def _convert(args: argparse.Namespace) -> int:
    registry = TypeRegistry()
    for module in args.imports:
        registry.register_module(module)
    for path in args.descriptor_set:
        registry.add_descriptor_set(path)
    message_type = registry.resolve(args.type)
    data = _read(args.file)
    message: Message
    if args.source == "json":
        message = from_json(
            data,
            message_type=message_type,
            registry=registry,
            ignore_unknown_fields=args.ignore_unknown_fields,
        )
    elif args.source == "binary":
        message = from_binary(data, message_type=message_type)
    else:
        message = from_text(data, message_type=message_type, registry=registry)
    if args.target == "json":
        text = to_json(
            message,
            registry=registry,
            emit_unpopulated=args.emit_unpopulated,
            omit_output_only=args.omit_output_only,
            indent=args.indent,
        )
        output = (text + "\n").encode("utf-8")
    elif args.target == "binary":
        output = to_binary(message)
    else:
        output = to_text(message, registry=registry).encode("utf-8")
    _write(args.output, output)
    return 0


def _read(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    with open(path, "rb") as f:
        return f.read()


def _write(path: str, data: bytes) -> None:
    if path == "-":
        stream: BinaryIO = sys.stdout.buffer
        stream.write(data)
        stream.flush()
        return
    with open(path, "wb") as f:
        f.write(data)


if __name__ == "__main__":
    sys.exit(main())
