"""``v1op openapi`` (the HTTP port's OpenAPI document) and ``v1op descriptor-set`` (the
services' protos as a FileDescriptorSet, for tools that cannot use server reflection over
HTTP/1.1, such as ``buf curl`` given it as its schema)."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import FileDescriptor

from .common import add_type_options, read_file, write_file

__all__ = ["add_schema_commands"]


def add_schema_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    openapi = commands.add_parser(
        "openapi",
        help="print the OpenAPI (Swagger 2.0) document of the REST API",
        description="Print the OpenAPI document the HTTP port serves at /openapi.json, made "
        "from the protos' google.api.http annotations and comments.",
    )
    openapi.set_defaults(run=_openapi)

    descriptors = commands.add_parser(
        "descriptor-set",
        help="write the services' protos as a FileDescriptorSet (a schema file for buf curl)",
        description="Write the protos of every service the server serves, with their imports "
        "and the payload types given with --import or --descriptor-set, as a binary "
        "FileDescriptorSet: the schema for clients that cannot use server reflection (which "
        "needs HTTP/2), such as `buf curl` (given it as its schema) against the HTTP port.",
    )
    descriptors.add_argument("-o", "--output", default="-", help="file to write (default: stdout)")
    add_type_options(descriptors)
    descriptors.set_defaults(run=_descriptor_set)


def _openapi(args: argparse.Namespace) -> int:
    from ..gateway import DOCUMENTED_SERVICES, openapi_document

    sys.stdout.buffer.write(openapi_document(DOCUMENTED_SERVICES))
    sys.stdout.flush()
    return 0


def _descriptor_set(args: argparse.Namespace) -> int:
    from ..gateway import RPC_SERVICES

    files: list[FileDescriptor] = [service.file for service in RPC_SERVICES]
    if args.imports and os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.append(os.getcwd())  # as registry_from does: where generated modules are
    for module in args.imports:
        file = getattr(importlib.import_module(module), "DESCRIPTOR", None)
        if not isinstance(file, FileDescriptor):
            raise TypeError(f"module {module} is not a generated _pb2 module")
        files.append(file)
    out = descriptor_pb2.FileDescriptorSet()
    seen: set[str] = set()

    def add(file: FileDescriptor) -> None:
        if file.name in seen:
            return
        seen.add(file.name)
        for dependency in file.dependencies:
            add(dependency)  # imports first, as protoc --include_imports writes them
        file.CopyToProto(out.file.add())

    for file in files:
        add(file)
    for path in args.descriptor_set:
        given = descriptor_pb2.FileDescriptorSet.FromString(read_file(path))
        for proto in given.file:
            if proto.name not in seen:
                seen.add(proto.name)
                out.file.append(proto)
    write_file(args.output, out.SerializeToString())
    return 0
