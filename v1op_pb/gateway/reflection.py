"""Learning a payload type from the gRPC server's reflection service, over the gateway's
own (asyncio) channel: the file defining it, with its imports, goes into the registry."""

from __future__ import annotations

import logging

import grpc
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from .._registry import TypeRegistry

__all__ = ["learn_type"]

REFLECTION_TIMEOUT = 10.0
_log = logging.getLogger("v1op.gateway")


async def learn_type(channel: grpc.aio.Channel, registry: TypeRegistry, full_name: str) -> bool:
    """Add the file defining ``full_name`` to ``registry``, from the server's reflection;
    False when the server does not know the type or cannot say."""
    # types-grpcio-reflection types the stub for sync channels only, its method not at all.
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)  # type: ignore[arg-type]
    request = reflection_pb2.ServerReflectionRequest(file_containing_symbol=full_name)
    try:
        call = stub.ServerReflectionInfo(iter([request]), timeout=REFLECTION_TIMEOUT)  # type: ignore[operator]
        response = await call.read()
        call.cancel()
    except grpc.aio.AioRpcError as e:
        _log.warning("reflection could not say what %s is: %s", full_name, e.code().name)
        return False
    if response is grpc.aio.EOF or (
        response.WhichOneof("message_response") != "file_descriptor_response"
    ):
        return False
    files = response.file_descriptor_response.file_descriptor_proto
    file_set = descriptor_pb2.FileDescriptorSet(
        file=[descriptor_pb2.FileDescriptorProto.FromString(f) for f in files]
    )
    try:
        registry.add_descriptor_set(file_set)
    except ValueError as e:
        _log.warning("the server's files for %s do not build here: %s", full_name, e)
        return False
    return full_name in registry
