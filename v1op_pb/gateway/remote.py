"""The dispatcher of ``v1op gateway``: each call forwarded over a grpc.aio channel to a
remote server, with the caller's ``Authorization`` and the call's request id (so that the
gateway's and the server's access lines name the call alike); the remote server's Status
comes back as the call's CallError, typed details and all."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import DecodeError, Message
from google.rpc import status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from .._calls import (
    REQUEST_ID,
    CallError,
    CallInfo,
    MethodSpec,
    check_authorization,
    method_specs,
)
from .._registry import TypeRegistry
from .._status import make_status
from .reflection import learn_type

__all__ = ["CALL_TIMEOUT_SECONDS", "ChannelDispatcher", "open_channel"]

# A hung gRPC server must not hang HTTP callers: DEADLINE_EXCEEDED answers 504.
CALL_TIMEOUT_SECONDS = 60.0
HEALTH_TIMEOUT_SECONDS = 5.0


def open_channel(
    target: str, max_message_bytes: int, credentials: grpc.ChannelCredentials | None = None
) -> grpc.aio.Channel:
    """The gateway's channel to its gRPC server, taking messages as large as its bodies:
    over TLS with ``credentials``, else plaintext. Callers' tokens go on each call as
    their ``Authorization``, not on the channel."""
    options = [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
    ]
    if credentials is None:
        return grpc.aio.insecure_channel(target, options=options)
    return grpc.aio.secure_channel(target, credentials, options=options)


class ChannelDispatcher:
    """The methods of ``services`` on the server at the other end of ``channel``."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        services: Iterable[ServiceDescriptor],
        registry: TypeRegistry,
        *,
        timeout: float = CALL_TIMEOUT_SECONDS,
    ) -> None:
        self._channel = channel
        self._registry = registry
        self._timeout = timeout
        self._methods = method_specs(services)
        self._calls: dict[str, Any] = {
            name: channel.unary_unary(
                name,
                request_serializer=spec.request_class.SerializeToString,
                response_deserializer=spec.response_class.FromString,
            )
            for name, spec in self._methods.items()
        }

    @property
    def methods(self) -> Mapping[str, MethodSpec]:
        return self._methods

    async def call(self, info: CallInfo, request: Message) -> Message:
        check_authorization(info.metadata)
        authorization = info.header("authorization")
        metadata: tuple[tuple[str, str], ...] = ((REQUEST_ID, info.request_id),)
        if authorization is not None:
            metadata = (("authorization", authorization), *metadata)
        timeout = self._timeout
        if info.deadline is not None:
            timeout = min(timeout, max(0.0, info.deadline - time.monotonic()))
        try:
            response: Message = await self._calls[info.method](
                request, metadata=metadata, timeout=timeout
            )
        except grpc.aio.AioRpcError as e:
            raise CallError(status_of(e)) from None
        return response

    async def learn_type(self, full_name: str) -> bool:
        return await learn_type(self._channel, self._registry, full_name)

    async def ready(self) -> bool:
        stub = health_pb2_grpc.HealthStub(self._channel)
        try:
            answer = await stub.Check(  # type: ignore[attr-defined]
                health_pb2.HealthCheckRequest(), timeout=HEALTH_TIMEOUT_SECONDS
            )
        except grpc.aio.AioRpcError:
            return False
        return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)


def status_of(error: grpc.aio.AioRpcError) -> status_pb2.Status:
    """The Status a gRPC call ended with: the rich one of its trailers, when it has one."""
    code = error.code().value[0]
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin" and isinstance(value, bytes):  # -bin: bytes
            try:
                status = status_pb2.Status.FromString(value)
            except DecodeError:
                break
            if status.code == code:
                return status
    return make_status(code, error.details() or "")
