"""Learning message types from a server's reflection service, as grpcurl does: the file
that defines a type, with the files it imports, goes into a TypeRegistry, which keeps it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import grpc
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from .._errors import ConversionError
from .._registry import TypeRegistry, unknown_type_of

__all__ = ["file_set_of", "learn_type", "with_learned_types"]

T = TypeVar("T")
REFLECTION_TIMEOUT = 10.0
# A payload can hold Anys of other unknown types: learn one per round, this many at most.
MAX_ROUNDS = 16


def file_set_of(
    response: reflection_pb2.ServerReflectionResponse,
) -> descriptor_pb2.FileDescriptorSet | None:
    """The files of a reflection answer (the file asked for and its imports), or None when
    the server did not know the symbol."""
    if response.WhichOneof("message_response") != "file_descriptor_response":
        return None
    files = response.file_descriptor_response.file_descriptor_proto
    return descriptor_pb2.FileDescriptorSet(
        file=[descriptor_pb2.FileDescriptorProto.FromString(f) for f in files]
    )


def learn_type(channel: grpc.Channel, registry: TypeRegistry, full_name: str) -> bool:
    """Ask the server behind ``channel`` for the file defining ``full_name`` and add it to
    ``registry``; False when the server's reflection does not know it or cannot answer."""
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(file_containing_symbol=full_name)
    try:
        # types-grpcio-reflection leaves the method untyped.
        responses = stub.ServerReflectionInfo(iter([request]), timeout=REFLECTION_TIMEOUT)  # type: ignore[operator]
        file_set = file_set_of(next(responses))
    except (grpc.RpcError, StopIteration):
        return False
    if file_set is None:
        return False
    try:
        registry.add_descriptor_set(file_set)
    except ValueError:
        return False  # files that do not build here: the type stays unknown
    return full_name in registry


def with_learned_types(
    convert: Callable[[], T], channel: grpc.Channel, registry: TypeRegistry
) -> T:
    """``convert()``, learning from the server each payload type it fails on for being
    unknown and trying again; the ConversionError of a type the server does not know
    either propagates."""
    tried: set[str] = set()
    while True:
        try:
            return convert()
        except ConversionError as e:
            name = unknown_type_of(e)
            if name is None or name in tried or len(tried) >= MAX_ROUNDS:
                raise
            tried.add(name)
            if not learn_type(channel, registry, name):
                raise
