"""The HTTP port (needs the ``rest`` extra): REST from the services' ``google.api.http``
annotations (``http_rules``, ``rest``), Connect (``connect``) and gRPC-Web (``grpcweb``),
the OpenAPI document (``openapi``), CORS (``cors``) and health, served with aiohttp
(``app``). Every call goes to one dispatcher: the server's own services in its process, or
a remote server over gRPC (``remote``: ``v1op gateway``)."""

from .app import (
    DEFAULT_MAX_BODY_BYTES,
    DOCUMENTED_SERVICES,
    MAX_HEADER_BYTES,
    MAX_REQUEST_LINE_BYTES,
    RPC_SERVICES,
    HttpPort,
    create_http_app,
    open_http_port,
    run_gateway,
)
from .common import http_status_of
from .http_rules import PathTemplate, Route, TemplateError, routes_of
from .openapi import openapi, openapi_document
from .remote import CALL_TIMEOUT_SECONDS, ChannelDispatcher, open_channel

__all__ = [
    "CALL_TIMEOUT_SECONDS",
    "DEFAULT_MAX_BODY_BYTES",
    "DOCUMENTED_SERVICES",
    "MAX_HEADER_BYTES",
    "MAX_REQUEST_LINE_BYTES",
    "RPC_SERVICES",
    "ChannelDispatcher",
    "HttpPort",
    "PathTemplate",
    "Route",
    "TemplateError",
    "create_http_app",
    "http_status_of",
    "open_channel",
    "open_http_port",
    "openapi",
    "openapi_document",
    "routes_of",
    "run_gateway",
]
