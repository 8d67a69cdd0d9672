"""The ``v1op`` command."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from functools import partial
from typing import BinaryIO

from google.protobuf.message import Message

from ._errors import ConversionError
from ._formats import from_binary, from_text, to_binary, to_text
from ._json import from_json, to_json
from ._operation import Operation
from ._registry import TypeRegistry, UnknownTypeError
from ._stream import STREAM_FORMATS, Reporter, convert_stream

FORMATS = ("json", "binary", "text")
EXIT_ERROR = 2
EXIT_SKIPPED = 1  # v1op convert --skip-invalid: some records were bad and left out
EXIT_NOT_DONE = 1  # v1op wait: the operation was not done when the timeout ran out
_UNKNOWN_TYPE_HINT = (
    "v1op: hint: make the type known with --import <generated module> or --descriptor-set <file>"
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="v1op", description="Work with long-running Operations as protobuf messages."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    convert = commands.add_parser(
        "convert",
        help="convert a message between JSON, binary protobuf and text format",
        description="Convert one message (an Operation unless --type says otherwise) between "
        "the documented JSON shape, binary protobuf and protobuf text format, or a stream of "
        "messages between NDJSON (one JSON message per line) and length-delimited binary "
        "(each message preceded by its length as a varint).",
    )
    convert.add_argument("--from", dest="source", choices=FORMATS + STREAM_FORMATS, required=True)
    convert.add_argument("--to", dest="target", choices=FORMATS + STREAM_FORMATS, required=True)
    convert.add_argument("file", nargs="?", default="-", help="input file (default: stdin)")
    convert.add_argument("-o", "--output", default="-", help="output file (default: stdout)")
    convert.add_argument(
        "--type",
        default=Operation.DESCRIPTOR.full_name,
        help="full name of the message type (default: %(default)s)",
    )
    _add_type_options(convert)
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
    convert.add_argument(
        "--skip-invalid",
        action="store_true",
        help="ndjson/delimited: report each bad record and go on (exit status 1 if any); "
        "without it the first bad record stops the conversion (exit status 2)",
    )
    convert.set_defaults(run=_convert, check=partial(_check_convert, convert))

    serve = commands.add_parser(
        "serve",
        help="run the reference OperationService gRPC server",
        description="Serve OperationService, OperationProgressService, "
        "google.longrunning.Operations, health checking and reflection until SIGTERM.",
    )
    serve.add_argument("--grpc-addr", required=True, metavar="HOST:PORT")
    serve.add_argument("--db", required=True, help="SQLite file, or :memory:")
    serve.add_argument("--tokens", metavar="FILE", help="'TOKEN PRINCIPAL' lines")
    serve.add_argument(
        "--dev-anonymous",
        metavar="PRINCIPAL",
        help="FOR DEVELOPMENT ONLY: calls without a token act as PRINCIPAL",
    )
    serve.add_argument("--max-message-bytes", type=int, default=4 * 1024 * 1024)
    serve.add_argument(
        "--http-addr",
        metavar="HOST:PORT",
        help="also serve the documented REST API on this address, in the same process",
    )
    _add_type_options(serve)
    serve.set_defaults(run=_serve)

    gateway = commands.add_parser(
        "gateway",
        help="serve the documented REST API in front of a remote gRPC server",
        description="Serve the google.api.http mapping of OperationService and "
        "OperationProgressService, forwarding each call (with its Authorization) over gRPC.",
    )
    gateway.add_argument("--http-addr", required=True, metavar="HOST:PORT")
    gateway.add_argument("--grpc-target", required=True, metavar="HOST:PORT")
    gateway.add_argument(
        "--max-body-bytes", type=int, default=4 * 1024 * 1024, help="413 above this"
    )
    _add_type_options(gateway)
    gateway.set_defaults(run=_gateway)

    for name, helptext in (
        ("get", "print an operation as JSON"),
        ("list", "print the operations you may read, as a ListOperationsResponse"),
        ("wait", "wait until an operation is done and print it"),
    ):
        command = commands.add_parser(name, help=helptext)
        command.add_argument("--addr", required=True, metavar="HOST:PORT")
        command.add_argument(
            "--token", default=os.environ.get("V1OP_TOKEN"), help="bearer token ($V1OP_TOKEN)"
        )
        if name == "list":
            command.add_argument("--page-size", type=int, default=0)
        else:
            command.add_argument("name", help="operations/<id>")
        if name == "wait":
            command.add_argument("--timeout", type=float, default=None, help="seconds")
        _add_type_options(command)
        command.set_defaults(run=_client_command)
    return parser


def _add_type_options(command: argparse.ArgumentParser) -> None:
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
            print(_UNKNOWN_TYPE_HINT, file=sys.stderr)
    except (OSError, ValueError, TypeError, UnknownTypeError, ImportError) as e:
        print(f"v1op: {e}", file=sys.stderr)
    return EXIT_ERROR


def _registry(args: argparse.Namespace) -> TypeRegistry:
    registry = TypeRegistry()
    for module in args.imports:
        registry.register_module(module)
    for path in args.descriptor_set:
        registry.add_descriptor_set(path)
    return registry


def _serve(args: argparse.Namespace) -> int:
    from ._identity import Principal, TokenTable
    from ._server import serve

    anonymous = Principal(args.dev_anonymous) if args.dev_anonymous else None
    if args.tokens is None and anonymous is None:
        raise ValueError("give --tokens FILE (or, for development only, --dev-anonymous)")
    if args.tokens is not None:
        tokens = TokenTable.load(args.tokens, anonymous=anonymous)
    else:
        tokens = TokenTable({}, anonymous=anonymous)
    if anonymous is not None:
        print(
            f"v1op: WARNING: calls without a token act as {anonymous.name} (development only)",
            file=sys.stderr,
        )
    asyncio.run(
        serve(
            args.grpc_addr,
            db=args.db,
            tokens=tokens,
            registry=_registry(args),
            max_message_bytes=args.max_message_bytes,
            http_address=args.http_addr,
        )
    )
    return 0


def _gateway(args: argparse.Namespace) -> int:
    from ._gateway import run_gateway

    asyncio.run(
        run_gateway(
            args.http_addr,
            args.grpc_target,
            registry=_registry(args),
            max_body_bytes=args.max_body_bytes,
        )
    )
    return 0


def _client_command(args: argparse.Namespace) -> int:
    from ._client import OperationClient
    from ._exceptions import StatusError

    registry = _registry(args)
    try:
        with OperationClient(args.addr, token=args.token, registry=registry) as client:
            if args.command == "get":
                message: Message = client.get(args.name)
            elif args.command == "list":
                message = client.list(args.page_size)
            else:
                message = client.wait(args.name, args.timeout)
    except StatusError as e:
        print(f"v1op: {e}", file=sys.stderr)
        return EXIT_ERROR
    print(to_json(message, registry=registry))
    if args.command == "wait" and not message.done:  # type: ignore[attr-defined]
        print(f"v1op: {args.name} is not done after {args.timeout}s", file=sys.stderr)
        return EXIT_NOT_DONE
    return 0


def _convert(args: argparse.Namespace) -> int:
    registry = _registry(args)
    message_type = registry.resolve(args.type)
    if args.source in STREAM_FORMATS:
        return _convert_stream(args, registry, message_type)
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


def _convert_stream(
    args: argparse.Namespace, registry: TypeRegistry, message_type: type[Message]
) -> int:
    # Streaming reads the input while the output is written: opening the same file for
    # writing would empty it before a line is read.
    if _same_file(args.output, args.file):
        raise ValueError(f"{args.output}: the output file is the input file; write elsewhere")
    with _open_input(args.file) as source, _open_output(args.output) as sink:
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
                _silence_stdout()
            return EXIT_ERROR
    if summary.unknown_type:
        print(_UNKNOWN_TYPE_HINT, file=sys.stderr)
    if summary.stopped:
        return EXIT_ERROR
    return EXIT_SKIPPED if summary.skipped else 0


def _same_file(output: str, source: str) -> bool:
    return (
        "-" not in (output, source) and os.path.exists(output) and os.path.samefile(output, source)
    )


@contextlib.contextmanager
def _open_input(path: str) -> Iterator[BinaryIO]:
    if path == "-":
        yield sys.stdin.buffer
        return
    with open(path, "rb") as f:
        yield f


@contextlib.contextmanager
def _open_output(path: str) -> Iterator[BinaryIO]:
    if path == "-":
        yield sys.stdout.buffer
        return
    with open(path, "wb") as f:
        yield f


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's final flush of what is still
    buffered for the closed pipe does not print a second BrokenPipeError."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass  # stdout is not a file descriptor (captured in tests): nothing will flush


def _read(path: str) -> bytes:
    with _open_input(path) as source:
        return source.read()


def _write(path: str, data: bytes) -> None:
    with _open_output(path) as sink:
        sink.write(data)
        sink.flush()


if __name__ == "__main__":
    sys.exit(main())
