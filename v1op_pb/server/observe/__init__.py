"""What the server and the gateway tell their operators: one access line per call, metrics
and spans, the same for every protocol (``calls``: the Observer every door of the server
calls), stderr in text or JSON off the event loop (``logs``), Prometheus metrics
(``metrics``, ``exporter``, ``store_metrics``; the ``metrics`` extra) and OpenTelemetry
spans (``tracing``; the ``otel`` extra). The doors: the dispatcher, the gRPC interceptor
(``grpc_port``) and the HTTP port's middleware (``http_port``, with the ``rest`` extra).

The optional extras' parts are imported when first used, so that a server without them
runs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .calls import WAIT_METHODS, ObservedCall, ObservedDispatcher, Observer, code_name
from .exporter import (
    MULTIPROCESS_VARIABLE,
    MetricsServer,
    multiprocess_directory,
    multiprocess_registry,
    serve_metrics,
    worker_exited,
)
from .logs import (
    ACCESS_LOGGER,
    LOG_FORMATS,
    BackgroundHandler,
    LineFormatter,
    LoggingSetup,
    configure_logging,
    flush_logs,
)
from .tracing import SpanMaker, tracing_from_environment

if TYPE_CHECKING:
    from .http_port import GatewayObservation, http_middleware, refused_request
    from .metrics import OPERATION_STATES, Metrics
    from .store_metrics import count_operations_forever, time_commits

__all__ = [
    "ACCESS_LOGGER",
    "LOG_FORMATS",
    "MULTIPROCESS_VARIABLE",
    "OPERATION_STATES",
    "WAIT_METHODS",
    "BackgroundHandler",
    "GatewayObservation",
    "LineFormatter",
    "LoggingSetup",
    "Metrics",
    "MetricsServer",
    "ObservedCall",
    "ObservedDispatcher",
    "Observer",
    "SpanMaker",
    "code_name",
    "configure_logging",
    "count_operations_forever",
    "flush_logs",
    "http_middleware",
    "multiprocess_directory",
    "multiprocess_registry",
    "refused_request",
    "serve_metrics",
    "time_commits",
    "tracing_from_environment",
    "worker_exited",
]

# The parts that need an extra: prometheus-client (metrics), aiohttp (rest).
_LAZY = {
    "Metrics": "metrics",
    "OPERATION_STATES": "metrics",
    "count_operations_forever": "store_metrics",
    "time_commits": "store_metrics",
    "GatewayObservation": "http_port",
    "http_middleware": "http_port",
    "refused_request": "http_port",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
