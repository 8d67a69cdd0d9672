"""What server reflection sees: every pool the server's TypeRegistry looks types up in, so
that clients (grpcurl, ``v1op get``, the gateway) can learn the payload types the server
was given with --descriptor-set as well as those it imported."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from google.protobuf import descriptor_pool
from google.protobuf.descriptor import Descriptor, FieldDescriptor, FileDescriptor

from .._registry import TypeRegistry

__all__ = ["RegistryReflectionPool"]

T = TypeVar("T")


class RegistryReflectionPool:
    """The look-ups grpc_reflection's servicer makes of a DescriptorPool, answered by the
    first of the registry's pools that knows the name (KeyError when none does)."""

    def __init__(self, registry: TypeRegistry | None) -> None:
        self._pools = (
            [descriptor_pool.Default()] if registry is None else registry.descriptor_pools()
        )

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
