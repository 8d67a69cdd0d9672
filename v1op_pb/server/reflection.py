"""Server reflection, ``grpc.reflection.v1`` and ``v1alpha``, over what the server knows:
every pool the server's TypeRegistry looks types up in, so that clients (grpcurl, buf curl,
``v1op get``, the gateway) can learn the payload types the server was given with
--descriptor-set as well as those it imported.

grpcio-reflection serves v1alpha only. v1 is the same service under a new package, with the
same messages field for field: the v1alpha servicer answers it too, its messages read and
written as v1's on the wire, and its own descriptor (v1alpha's, renamed) is in the pool so
that clients can list and describe it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import Descriptor, FieldDescriptor, FileDescriptor
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

from .._registry import TypeRegistry

__all__ = ["SERVICE_NAMES", "RegistryReflectionPool", "enable_reflection"]

T = TypeVar("T")
_V1ALPHA = reflection_pb2.DESCRIPTOR.package
_V1 = "grpc.reflection.v1"
SERVICE_NAMES = (f"{_V1}.ServerReflection", reflection.SERVICE_NAME)


def enable_reflection(
    server: grpc.aio.Server, service_names: Iterable[str], registry: TypeRegistry | None
) -> None:
    """Serve reflection v1 and v1alpha on ``server``, listing ``service_names`` (and the
    reflection services themselves)."""
    # A stand-in with the look-ups the servicer makes of a DescriptorPool.
    pool = RegistryReflectionPool(registry, extra=[_v1_pool()])
    servicer = reflection.aio.ReflectionServicer(
        (*service_names, *SERVICE_NAMES),
        pool=pool,
    )
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    v1 = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE_NAMES[0], {"ServerReflectionInfo": v1}),)
    )


def _v1_pool() -> descriptor_pool.DescriptorPool:
    """A pool holding grpc/reflection/v1/reflection.proto, made from v1alpha's file."""
    file = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(file)
    file.name = "grpc/reflection/v1/reflection.proto"
    file.package = _V1
    file.ClearField("options")  # v1alpha's language package options
    old, new = f".{_V1ALPHA}.", f".{_V1}."
    for message in file.message_type:
        for field in message.field:
            if field.type_name.startswith(old):
                field.type_name = new + field.type_name[len(old) :]
    for service in file.service:
        for method in service.method:
            method.input_type = new + method.input_type[len(old) :]
            method.output_type = new + method.output_type[len(old) :]
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return pool


class RegistryReflectionPool:
    """The look-ups grpc_reflection's servicer makes of a DescriptorPool, answered by the
    first of the registry's pools that knows the name (KeyError when none does)."""

    def __init__(
        self,
        registry: TypeRegistry | None,
        extra: Iterable[descriptor_pool.DescriptorPool] = (),
    ) -> None:
        self._pools = [
            *([descriptor_pool.Default()] if registry is None else registry.descriptor_pools()),
            *extra,
        ]

    def _first(self, find: Callable[[descriptor_pool.DescriptorPool], T]) -> T:
        for pool in self._pools:
            try:
                return find(pool)
            except KeyError:
                continue
        raise KeyError("not found")

    # The names and behaviour of DescriptorPool's methods, which the servicer calls.
    def FindFileByName(self, name: str) -> FileDescriptor:
        return self._first(lambda pool: pool.FindFileByName(name))

    def FindFileContainingSymbol(self, symbol: str) -> FileDescriptor:
        return self._first(lambda pool: pool.FindFileContainingSymbol(symbol))

    def FindMessageTypeByName(self, name: str) -> Descriptor:
        return self._first(lambda pool: pool.FindMessageTypeByName(name))

    def FindExtensionByNumber(self, message: Descriptor, number: int) -> FieldDescriptor:
        return self._first(lambda pool: pool.FindExtensionByNumber(message, number))

    def FindAllExtensions(self, message: Descriptor) -> list[FieldDescriptor]:
        for pool in self._pools:
            try:
                return list(pool.FindAllExtensions(message))
            except KeyError:
                continue
        return []
