"""CORS for browsers calling the HTTP port from the origins the operator granted
(``--cors-origin``): the preflight allows the headers Connect, gRPC-Web and REST requests
send, and answers expose the headers their clients read. No origin granted, no CORS
headers at all."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web
from google.rpc import code_pb2

from .._errors import excerpt
from .._status import make_status
from .rest import status_response

__all__ = ["cors_middleware"]

ALLOWED_METHODS = "GET, POST, PATCH, DELETE"
ALLOWED_HEADERS = ", ".join(
    [
        "Authorization",
        "Content-Type",
        "Content-Encoding",
        "Connect-Protocol-Version",
        "Connect-Timeout-Ms",
        "Grpc-Timeout",
        "Grpc-Encoding",
        "Grpc-Accept-Encoding",
        "X-Grpc-Web",
        "X-User-Agent",
    ]
)
EXPOSED_HEADERS = ", ".join(
    [
        "Grpc-Status",
        "Grpc-Message",
        "Grpc-Status-Details-Bin",
        "Grpc-Encoding",
        "Content-Encoding",
        "Connect-Content-Encoding",
        "Allow",
        "WWW-Authenticate",
    ]
)
MAX_AGE_SECONDS = "7200"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def cors_middleware(
    origins: Iterable[str],
) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """A middleware granting ``origins`` (``*``: any origin)."""
    granted = frozenset(origins)
    any_origin = "*" in granted

    def allowed(origin: str | None) -> bool:
        return origin is not None and (any_origin or origin in granted)

    @web.middleware
    async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if (
            request.method == "OPTIONS"
            and origin is not None
            and "Access-Control-Request-Method" in request.headers
        ):
            if not allowed(origin):
                # No grant: no CORS headers, so the browser refuses the call.
                return status_response(
                    403,
                    make_status(
                        code_pb2.PERMISSION_DENIED,
                        f"origin {excerpt(origin)} may not call this server from a browser",
                    ),
                )
            return web.Response(
                status=204,
                headers={
                    "Access-Control-Allow-Origin": "*" if any_origin else origin,
                    "Access-Control-Allow-Methods": ALLOWED_METHODS,
                    "Access-Control-Allow-Headers": ALLOWED_HEADERS,
                    "Access-Control-Max-Age": MAX_AGE_SECONDS,
                    "Vary": "Origin",
                },
            )
        response = await handler(request)
        if allowed(origin):
            response.headers["Access-Control-Allow-Origin"] = "*" if any_origin else str(origin)
            response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
            response.headers.add("Vary", "Origin")
        return response

    return cors
