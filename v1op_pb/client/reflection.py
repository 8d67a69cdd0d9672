"""Learning message types from a server's reflection service, as grpcurl does: the file
that defines a type, with the files it imports, goes into a TypeRegistry, which keeps it.

``TypeLearner`` is what a client keeps: its registry, and a bounded negative cache of the
names the server did not know, so that a payload of a type nobody knows costs one
reflection round trip per ``unknown_ttl`` seconds, not one per conversion.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TypeVar

import grpc
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from .._errors import ConversionError
from .._registry import TypeRegistry, unknown_type_of

__all__ = ["TypeLearner", "file_set_of", "learn_type", "learn_type_async", "with_learned_types"]

T = TypeVar("T")
REFLECTION_TIMEOUT = 10.0
# A payload can hold Anys of other unknown types: learn one per round, this many at most.
MAX_ROUNDS = 16
# A server may learn a type later (restarted with more --import): ask again after this.
UNKNOWN_TTL = 300.0
MAX_UNKNOWN = 1024


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


def _add(
    registry: TypeRegistry, file_set: descriptor_pb2.FileDescriptorSet | None, name: str
) -> bool:
    if file_set is None:
        return False
    try:
        registry.add_descriptor_set(file_set)
    except ValueError:
        return False  # files that do not build here: the type stays unknown
    return name in registry


def _request(full_name: str) -> reflection_pb2.ServerReflectionRequest:
    return reflection_pb2.ServerReflectionRequest(file_containing_symbol=full_name)


def learn_type(
    channel: grpc.Channel,
    registry: TypeRegistry,
    full_name: str,
    metadata: Sequence[tuple[str, str]] = (),
) -> bool:
    """Ask the server behind ``channel`` for the file defining ``full_name`` and add it to
    ``registry``; False when the server's reflection does not know it or cannot answer."""
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    try:
        # types-grpcio-reflection leaves the method untyped.
        responses = stub.ServerReflectionInfo(  # type: ignore[operator]
            iter([_request(full_name)]), timeout=REFLECTION_TIMEOUT, metadata=tuple(metadata)
        )
        file_set = file_set_of(next(responses))
        responses.cancel()
    except (grpc.RpcError, StopIteration):
        return False
    return _add(registry, file_set, full_name)


async def learn_type_async(
    channel: grpc.aio.Channel,
    registry: TypeRegistry,
    full_name: str,
    metadata: Sequence[tuple[str, str]] = (),
) -> bool:
    """``learn_type`` over a grpc.aio channel."""
    # types-grpcio-reflection types the stub for sync channels only, its method not at all.
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)  # type: ignore[arg-type]
    try:
        call = stub.ServerReflectionInfo(  # type: ignore[operator]
            iter([_request(full_name)]), timeout=REFLECTION_TIMEOUT, metadata=tuple(metadata)
        )
        response = await call.read()
        call.cancel()
    except grpc.RpcError:
        return False
    if response is grpc.aio.EOF:
        return False
    return _add(registry, file_set_of(response), full_name)


class TypeLearner:
    """A registry that grows from the server's reflection, and the names it did not know.

    A name the server could not describe is not asked for again for ``unknown_ttl``
    seconds; at most ``max_unknown`` such names are kept (the oldest go first), so neither
    the round trips nor the memory grow with a stream of unknown payloads.
    """

    def __init__(
        self,
        registry: TypeRegistry,
        *,
        unknown_ttl: float = UNKNOWN_TTL,
        max_unknown: int = MAX_UNKNOWN,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry
        self.unknown_ttl = unknown_ttl
        self.max_unknown = max_unknown
        self.lookups = 0  # reflection round trips made, for whoever wants to know
        self._clock = clock
        self._unknown: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def should_ask(self, name: str) -> bool:
        """Whether to ask the server about ``name``: not known to be unknown to it."""
        with self._lock:
            expiry = self._unknown.get(name)
            if expiry is None:
                return True
            if self._clock() >= expiry:
                del self._unknown[name]
                return True
            return False

    def answered(self, name: str, learned: bool) -> bool:
        """Record the answer of one round trip about ``name``; returns ``learned``."""
        with self._lock:
            self.lookups += 1
            if not learned:
                self._unknown[name] = self._clock() + self.unknown_ttl
                self._unknown.move_to_end(name)
                while len(self._unknown) > self.max_unknown:
                    self._unknown.popitem(last=False)
        return learned

    def learn(
        self, channel: grpc.Channel, name: str, metadata: Sequence[tuple[str, str]] = ()
    ) -> bool:
        if not self.should_ask(name):
            return False
        return self.answered(name, learn_type(channel, self.registry, name, metadata))

    async def learn_async(
        self, channel: grpc.aio.Channel, name: str, metadata: Sequence[tuple[str, str]] = ()
    ) -> bool:
        if not self.should_ask(name):
            return False
        return self.answered(name, await learn_type_async(channel, self.registry, name, metadata))


def _next_unknown(error: ConversionError, tried: set[str]) -> str | None:
    """The type to learn before trying ``convert`` again, or None to give up."""
    name = unknown_type_of(error)
    if name is None or name in tried or len(tried) >= MAX_ROUNDS:
        return None
    tried.add(name)
    return name


def with_learned_types(
    convert: Callable[[], T],
    channel: grpc.Channel,
    learner: TypeLearner | TypeRegistry,
    metadata: Sequence[tuple[str, str]] = (),
) -> T:
    """``convert()``, learning from the server each payload type it fails on for being
    unknown and trying again; the ConversionError of a type the server does not know
    either propagates."""
    if isinstance(learner, TypeRegistry):
        learner = TypeLearner(learner)
    tried: set[str] = set()
    while True:
        try:
            return convert()
        except ConversionError as e:
            name = _next_unknown(e, tried)
            if name is None or not learner.learn(channel, name, metadata):
                raise


async def with_learned_types_async(
    convert: Callable[[], T],
    channel: grpc.aio.Channel,
    learner: TypeLearner,
    metadata: Sequence[tuple[str, str]] = (),
) -> T:
    """``with_learned_types`` over a grpc.aio channel (``convert`` itself is not awaited)."""
    tried: set[str] = set()
    while True:
        try:
            return convert()
        except ConversionError as e:
            name = _next_unknown(e, tried)
            if name is None or not await learner.learn_async(channel, name, metadata):
                raise
