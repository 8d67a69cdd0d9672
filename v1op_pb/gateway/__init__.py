"""The REST gateway (needs the ``rest`` extra): the routes written in the services'
``google.api.http`` annotations (``http_rules``), served with aiohttp in front of a gRPC
server (``app``)."""

from .app import (
    CALL_TIMEOUT_SECONDS,
    DEFAULT_MAX_BODY_BYTES,
    DOCUMENTED_SERVICES,
    create_gateway_app,
    open_channel,
    run_gateway,
    start_gateway,
)
from .http_rules import PathTemplate, Route, TemplateError, routes_of

__all__ = [
    "CALL_TIMEOUT_SECONDS",
    "DEFAULT_MAX_BODY_BYTES",
    "DOCUMENTED_SERVICES",
    "PathTemplate",
    "Route",
    "TemplateError",
    "create_gateway_app",
    "open_channel",
    "routes_of",
    "run_gateway",
    "start_gateway",
]
