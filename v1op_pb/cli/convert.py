"""``v1op convert``: one message between JSON, binary and text, or a stream of them
between NDJSON and length-delimited binary."""

from __future__ import annotations

import argparse
import os
import sys
from functools import partial

from google.protobuf.message import Message

from .._formats import from_binary, from_text, to_binary, to_text
from .._json import from_json, to_json
from .._operation import Operation
from .._registry import TypeRegistry
from .._stream import STREAM_FORMATS, Reporter, convert_stream
from .common import (
    EXIT_ERROR,
    EXIT_SKIPPED,
    UNKNOWN_TYPE_HINT,
    add_type_options,
    open_input,
    open_output,
    read_file,
    registry_from,
    silence_stdout,
    write_file,
)

__all__ = ["add_convert_command"]

FORMATS = ("json", "binary", "text")


def add_convert_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    convert = commands.add_parser(
        "convert",
        help="convert a message between JSON, binary protobuf and text format",
        description="Convert one message (an Operation unless --type says otherwise) between "
        "the documented JSON shape, binary protobuf and protobuf text format, or a stream of "
        "messages between NDJSON (one JSON message per line) and length-delimited binary "
        "(each message preceded by its length as a varint).",
    )
    convert.add_argument(
        "--from",
        dest="source",
        choices=FORMATS + STREAM_FORMATS,
        required=True,
        help="the input's format: one message (json, binary, text) or a stream (ndjson, delimited)",
    )
    convert.add_argument(
        "--to",
        dest="target",
        choices=FORMATS + STREAM_FORMATS,
        required=True,
        help="the output's format (streams convert only to streams)",
    )
    convert.add_argument("file", nargs="?", default="-", help="input file (default: stdin)")
    convert.add_argument("-o", "--output", default="-", help="output file (default: stdout)")
    convert.add_argument(
        "--type",
        default=Operation.DESCRIPTOR.full_name,
        help="full name of the message type (default: %(default)s)",
    )
    add_type_options(convert)
    convert.add_argument(
        "--ignore-unknown-fields",
        action="store_true",
        help="JSON input: skip keys the message type does not have, instead of refusing them",
    )
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
    convert.add_argument(
        "--skip-invalid",
        action="store_true",
        help="ndjson/delimited: report each bad record and go on (exit status 1 if any); "
        "without it the first bad record stops the conversion (exit status 2)",
    )
    convert.set_defaults(run=_convert, check=partial(_check_convert, convert))


def _check_convert(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse, as argparse does (exit status 2, with the usage), what choices cannot say."""
    streaming = args.source in STREAM_FORMATS
    if streaming != (args.target in STREAM_FORMATS):
        parser.error(
            f"--from {args.source} --to {args.target}: the streaming formats "
            f"({', '.join(STREAM_FORMATS)}) convert only to and from each other"
        )
    if not streaming and args.skip_invalid:
        parser.error("--skip-invalid applies only to the streaming formats ndjson and delimited")
    if args.target == "ndjson" and args.indent is not None:
        parser.error("--indent cannot be used with --to ndjson: each message must stay one line")


def _convert(args: argparse.Namespace) -> int:
    registry = registry_from(args)
    message_type = registry.resolve(args.type)
    if args.source in STREAM_FORMATS:
        return _convert_stream(args, registry, message_type)
    data = read_file(args.file)
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
    write_file(args.output, output)
    return 0


def _convert_stream(
    args: argparse.Namespace, registry: TypeRegistry, message_type: type[Message]
) -> int:
    # Streaming reads the input while the output is written: opening the same file for
    # writing would empty it before a line is read.
    if _same_file(args.output, args.file):
        raise ValueError(f"{args.output}: the output file is the input file; write elsewhere")
    with open_input(args.file) as source, open_output(args.output) as sink:
        try:
            summary = convert_stream(
                source,
                sink,
                source_format=args.source,
                target_format=args.target,
                name="<stdin>" if args.file == "-" else args.file,
                message_type=message_type,
                registry=registry,
                ignore_unknown_fields=args.ignore_unknown_fields,
                emit_unpopulated=args.emit_unpopulated,
                omit_output_only=args.omit_output_only,
                skip_invalid=args.skip_invalid,
                reporter=Reporter(sys.stderr),
            )
        except BrokenPipeError:
            # The reader went away (`| head`): stop quietly, as a filter does.
            if args.output == "-":
                silence_stdout()
            return EXIT_ERROR
    if summary.unknown_type:
        print(UNKNOWN_TYPE_HINT, file=sys.stderr)
    if summary.stopped:
        return EXIT_ERROR
    return EXIT_SKIPPED if summary.skipped else 0


def _same_file(output: str, source: str) -> bool:
    return (
        "-" not in (output, source) and os.path.exists(output) and os.path.samefile(output, source)
    )
