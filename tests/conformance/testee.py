"""A testee for protobuf's conformance test runner, for the proto3 JSON codec of v1op_pb.

The runner (``conformance_test_runner``, built from protobuf's sources) starts this program
and sends it requests on stdin; each request and each response is a 4-byte little-endian
length followed by a serialized ``conformance.ConformanceRequest`` / ``ConformanceResponse``.

JSON is read with ``v1op_pb.from_json`` and written with ``v1op_pb.to_json``; the binary
format goes through the protobuf runtime; text format (and JSPB) is skipped. A
ConversionError is a parse or serialize error; any other exception is reported as a runtime
error with its traceback, since the codec should raise nothing else.

The generated Python modules of ``conformance/conformance.proto`` and of the test message
protos are not part of this repository: pass the directory protoc wrote them to as the first
argument or as ``CONFORMANCE_PY``. Every ``*_pb2.py`` below it is loaded and registered.

``CONFORMANCE_CODEC=json_format`` runs protobuf's own json_format instead, as a reference.
See README.md beside this file.
"""

from __future__ import annotations

import importlib.util
import os
import struct
import sys
import traceback
from pathlib import Path
from types import ModuleType

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message

import v1op_pb

_LENGTH = struct.Struct("<I")


def _load_generated(root: Path) -> list[ModuleType]:
    """Import every generated module under ``root`` by its file path."""
    modules = []
    for path in sorted(root.rglob("*_pb2.py")):
        relative = path.relative_to(root).with_suffix("")
        name = "_conformance_gen." + ".".join(relative.parts)
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        modules.append(module)
    return modules


class Testee:
    def __init__(self, root: Path, codec: str) -> None:
        modules = _load_generated(root)
        conformance = [m for m in modules if m.DESCRIPTOR.name == "conformance/conformance.proto"]
        if not conformance:
            raise SystemExit(f"no conformance/conformance_pb2.py under {root}")
        self.pb = conformance[0]
        self.registry = v1op_pb.TypeRegistry().register(*modules)
        self.reference = codec == "json_format"

    def message_class(self, name: str) -> type[Message]:
        return self.registry.resolve(name)

    def handle(self, request: Message) -> Message:
        pb = self.pb
        response = pb.ConformanceResponse()
        try:
            self._handle(request, response)
        except Exception:
            response.runtime_error = traceback.format_exc()
        return response

    def _handle(self, request: Message, response: Message) -> None:
        pb = self.pb
        payload = request.WhichOneof("payload")
        output = request.requested_output_format
        # Text format goes through protobuf's text_format, which has its own conformance
        # gaps (reserved names, the \\? escape); this testee checks the JSON codec.
        if payload in ("text_payload", "jspb_payload"):
            response.skipped = f"{payload} is not tested here"
            return
        if output in (pb.TEXT_FORMAT, pb.JSPB):
            response.skipped = "text format and JSPB output are not tested here"
            return
        cls = self.message_class(request.message_type)
        if payload == "protobuf_payload":
            try:
                message = cls.FromString(request.protobuf_payload)
            except DecodeError as e:
                response.parse_error = f"binary: {e}"
                return
        elif payload == "json_payload":
            ignore = request.test_category == pb.JSON_IGNORE_UNKNOWN_PARSING_TEST
            try:
                message = self.parse_json(request.json_payload, cls, ignore)
            except v1op_pb.ConversionError as e:
                response.parse_error = str(e)
                return
        else:
            raise ValueError(f"request has no payload ({payload!r})")

        if output == pb.PROTOBUF:
            response.protobuf_payload = message.SerializeToString()
        elif output == pb.JSON:
            try:
                response.json_payload = self.write_json(message)
            except v1op_pb.ConversionError as e:
                response.serialize_error = str(e)
        else:
            raise ValueError(f"unsupported requested_output_format {output}")

    def parse_json(self, text: str, cls: type[Message], ignore_unknown: bool) -> Message:
        if self.reference:
            message = cls()
            try:
                json_format.Parse(text, message, ignore_unknown_fields=ignore_unknown)
            except json_format.ParseError as e:
                raise v1op_pb.ConversionError(str(e)) from e
            return message
        return v1op_pb.from_json(
            text, message_type=cls, registry=self.registry, ignore_unknown_fields=ignore_unknown
        )

    def write_json(self, message: Message) -> str:
        if self.reference:
            try:
                return json_format.MessageToJson(message)
            except json_format.SerializeToJsonError as e:
                raise v1op_pb.ConversionError(str(e)) from e
        return v1op_pb.to_json(message, registry=self.registry)


def _read_exactly(stream, size: int) -> bytes | None:
    data = stream.read(size)
    if not data:
        return None
    if len(data) != size:
        raise OSError(f"short read: {len(data)} of {size} bytes")
    return data


def main(argv: list[str]) -> int:
    directory = argv[1] if len(argv) > 1 else os.environ.get("CONFORMANCE_PY")
    if not directory:
        print(
            "usage: testee.py DIR (or CONFORMANCE_PY=DIR): the generated conformance modules",
            file=sys.stderr,
        )
        return 2
    testee = Testee(Path(directory), os.environ.get("CONFORMANCE_CODEC", "v1op_pb"))
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # stdout carries the protocol only
    count = 0
    while True:
        header = _read_exactly(stdin, 4)
        if header is None:
            break
        (length,) = _LENGTH.unpack(header)
        body = _read_exactly(stdin, length) if length else b""
        request = testee.pb.ConformanceRequest.FromString(body or b"")
        data = testee.handle(request).SerializeToString()
        stdout.write(_LENGTH.pack(len(data)))
        stdout.write(data)
        stdout.flush()
        count += 1
    print(f"testee: EOF after {count} requests", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
