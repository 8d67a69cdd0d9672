"""The gRPC port's calls that never reach the dispatcher, observed where the server's
request interceptor (``services.DecodeRequests``) sees them: request bytes that do not
decode, methods the server does not have, and the services beside OperationService (health
checking, reflection)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.rpc import code_pb2, status_pb2

from ..._calls import REQUEST_ID, CallInfo
from .calls import UNKNOWN_ROUTE, Observer

__all__ = ["observed_handler", "refused_call", "unknown_method_handler"]

Context = grpc.aio.ServicerContext[Any, Any]
CallInfoOf = Callable[[str, Context], CallInfo]
_UNIMPLEMENTED = "Method not found!"  # gRPC's own words for it


def refused_call(
    observer: Observer, info: CallInfo, status: status_pb2.Status, route: str | None = None
) -> tuple[tuple[str, str], ...]:
    """A call refused before it was decoded: observed, and the trailing metadata its answer
    carries (the request id)."""
    observer.end(observer.begin(info, route), status)
    return ((REQUEST_ID, info.request_id),)


def unknown_method_handler(
    observer: Observer, method: str, info_of: CallInfoOf
) -> grpc.RpcMethodHandler[Any, Any]:
    """The answer to a method the server does not have: UNIMPLEMENTED, as gRPC answers it,
    observed. A stream handler: it answers any kind of call without reading a message."""

    async def answer(requests: Any, context: Context) -> None:
        info = info_of(method, context)
        status = status_pb2.Status(code=code_pb2.UNIMPLEMENTED, message=_UNIMPLEMENTED)
        trailing = refused_call(observer, info, status, UNKNOWN_ROUTE)
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, _UNIMPLEMENTED, trailing)

    return grpc.stream_stream_rpc_method_handler(answer)


def observed_handler(
    observer: Observer,
    method: str,
    handler: grpc.RpcMethodHandler[Any, Any],
    info_of: CallInfoOf,
) -> grpc.RpcMethodHandler[Any, Any]:
    """``handler`` (a method the dispatcher does not serve: health, reflection) with each of
    its calls observed."""
    if handler.unary_unary is not None:
        unary: Callable[[Any, Context], Awaitable[Any]] = handler.unary_unary  # type: ignore[assignment]

        async def unary_unary(request: Any, context: Context) -> Any:
            info = info_of(method, context)
            call = observer.begin(info)
            context.set_trailing_metadata(((REQUEST_ID, info.request_id),))
            try:
                response = await unary(request, context)
            except BaseException as e:
                observer.end(call, _status_of(e, context), request)
                raise
            observer.end(call, _answered(context), request, response)
            return response

        return grpc.unary_unary_rpc_method_handler(
            unary_unary,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    kinds = {
        "unary_stream": (grpc.unary_stream_rpc_method_handler, "server_stream"),
        "stream_stream": (grpc.stream_stream_rpc_method_handler, "bidi_stream"),
        "stream_unary": (grpc.stream_unary_rpc_method_handler, "client_stream"),
    }
    kind = next(k for k in kinds if getattr(handler, k) is not None)
    make, grpc_type = kinds[kind]
    behaviour: Any = getattr(handler, kind)

    async def stream(requests: Any, context: Context) -> Any:
        info = info_of(method, context)
        call = observer.begin(info, grpc_type=grpc_type)
        context.set_trailing_metadata(((REQUEST_ID, info.request_id),))
        try:
            if inspect.isasyncgenfunction(behaviour):
                async for response in behaviour(requests, context):
                    await context.write(response)
                result = None
            else:
                result = await behaviour(requests, context)
        except BaseException as e:
            observer.end(call, _status_of(e, context))
            raise
        observer.end(call, _answered(context))
        return result

    return make(
        stream,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


def _answered(context: Context) -> status_pb2.Status | None:
    """None (OK), or the code a handler set without raising."""
    code = _code_of(context)
    if code in (None, code_pb2.OK):
        return None
    return status_pb2.Status(code=code, message=_details_of(context))


def _status_of(error: BaseException, context: Context) -> status_pb2.Status:
    if isinstance(error, asyncio.CancelledError):
        return status_pb2.Status(code=code_pb2.CANCELLED, message="the caller cancelled")
    if isinstance(error, grpc.aio.AbortError):
        code = _code_of(context)
        if code is not None:
            return status_pb2.Status(code=code, message=_details_of(context))
    # gRPC answers any other exception UNKNOWN.
    return status_pb2.Status(code=code_pb2.UNKNOWN, message=f"Unexpected {type(error).__name__}")


def _code_of(context: Context) -> int | None:
    """The code set on the call so far (by abort or set_code), if any."""
    try:
        code: Any = context.code()
    except (AttributeError, NotImplementedError):
        return None
    if code is None:
        return None
    if isinstance(code, grpc.StatusCode):
        return int(code.value[0])
    return int(code)


def _details_of(context: Context) -> str:
    try:
        details: Any = context.details()
    except (AttributeError, NotImplementedError):
        return ""
    if isinstance(details, bytes):
        return details.decode("utf-8", "replace")
    return str(details or "")
