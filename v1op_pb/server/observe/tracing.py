"""OpenTelemetry traces (optional: the ``otel`` extra, or any opentelemetry-api and SDK the
user has): one SERVER span per call, named ``package.Service/Method``, a child of the
caller's span when the call carries one (``traceparent``, or whatever OTEL_PROPAGATORS
says), with the method, the gRPC code, the principal and the operation's name.

The tracer provider is the one already set (by ``opentelemetry-instrument`` or an embedding
program); with none set, ``OTEL_TRACES_EXPORTER`` (``console``, ``otlp``, ...: the
exporters installed packages provide) makes the server set up the SDK itself, its resource,
sampler and exporter settings read from the other OTEL_* variables as the SDK reads them.
Without either, or with ``OTEL_SDK_DISABLED=true``, nothing is traced and a call pays
nothing for it.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
from collections.abc import Sequence
from typing import Any

from google.rpc import code_pb2

__all__ = ["SpanMaker", "tracing_from_environment"]

_log = logging.getLogger("v1op.observe")
# The codes that mark a server's span as failed (OpenTelemetry's RPC conventions): the
# others are the caller's doing, answered as they should be.
_SERVER_ERRORS = frozenset(
    {
        code_pb2.UNKNOWN,
        code_pb2.DEADLINE_EXCEEDED,
        code_pb2.UNIMPLEMENTED,
        code_pb2.INTERNAL,
        code_pb2.UNAVAILABLE,
        code_pb2.DATA_LOSS,
    }
)
_RPC_SYSTEMS = {"grpc": "grpc", "grpc-web": "grpc", "connect": "connect_rpc"}


class SpanMaker:
    """Starts and ends the span of each call on one tracer."""

    def __init__(self, tracer: Any) -> None:
        from opentelemetry import propagate, trace
        from opentelemetry.trace import Status, StatusCode

        self._tracer = tracer
        self._extract = propagate.extract
        self._server = trace.SpanKind.SERVER
        self._error = StatusCode.ERROR
        self._status = Status

    def start(
        self, protocol: str, method: str, metadata: Sequence[tuple[str, str]], start_ns: int
    ) -> Any:
        service, _, name = method.lstrip("/").partition("/")
        attributes = {"v1op.protocol": protocol}
        system = _RPC_SYSTEMS.get(protocol)
        if system is not None and name:
            attributes["rpc.system"] = system
            attributes["rpc.service"] = service
            attributes["rpc.method"] = name
        return self._tracer.start_span(
            method.lstrip("/"),
            context=self._extract(dict(metadata)),
            kind=self._server,
            attributes=attributes,
            start_time=start_ns,
        )

    def end(
        self,
        span: Any,
        code: int,
        code_name: str,
        message: str,
        principal: str,
        operation: str,
        request_id: str,
    ) -> None:
        span.set_attribute("rpc.grpc.status_code", code)
        span.set_attribute("v1op.code", code_name)
        span.set_attribute("v1op.request_id", request_id)
        if principal:
            span.set_attribute("v1op.principal", principal)
        if operation:
            span.set_attribute("v1op.operation", operation)
        if code in _SERVER_ERRORS:
            span.set_status(self._status(self._error, f"{code_name}: {message}"))
        span.end()


def tracing_from_environment() -> SpanMaker | None:
    """The span maker of the process's tracer provider (see the module's text), or None
    when nothing is to be traced. ValueError when OTEL_TRACES_EXPORTER names an exporter
    no installed package provides, or the SDK it needs is missing."""
    try:
        from opentelemetry import trace
    except ImportError:
        if _exporters_named():
            raise ValueError(
                "OTEL_TRACES_EXPORTER is set, but OpenTelemetry is not installed: "
                "pip install 'v1op-pb[otel]'"
            ) from None
        return None
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    provider = trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider):
        made = _provider_from_environment()
        if made is None:
            return None
        trace.set_tracer_provider(made)
        provider = trace.get_tracer_provider()
    if isinstance(provider, trace.NoOpTracerProvider):
        return None
    return SpanMaker(provider.get_tracer("v1op_pb.server"))


def _exporters_named() -> list[str]:
    names = os.environ.get("OTEL_TRACES_EXPORTER", "")
    return [n.strip() for n in names.split(",") if n.strip() and n.strip() != "none"]


def _provider_from_environment() -> Any:
    """An SDK tracer provider with the exporters OTEL_TRACES_EXPORTER names, or None."""
    names = _exporters_named()
    if not names:
        return None
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        raise ValueError(
            "OTEL_TRACES_EXPORTER is set, but opentelemetry-sdk is not installed: "
            "pip install 'v1op-pb[otel]'"
        ) from None
    attributes = {}
    if not os.environ.get("OTEL_SERVICE_NAME") and "service.name=" not in os.environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    ):
        attributes["service.name"] = "v1op"
    provider = TracerProvider(resource=Resource.create(attributes))
    for name in names:
        found = [
            entry
            for entry in importlib.metadata.entry_points(group="opentelemetry_traces_exporter")
            if entry.name == name
        ]
        if not found:
            raise ValueError(
                f"OTEL_TRACES_EXPORTER names {name!r}, which no installed package provides "
                f"(otlp: pip install opentelemetry-exporter-otlp)"
            )
        exporter = found[0].load()()
        provider.add_span_processor(BatchSpanProcessor(exporter))
    _log.info("tracing: spans go to %s (OTEL_TRACES_EXPORTER)", ", ".join(names))
    return provider
