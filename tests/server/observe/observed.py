"""What the observation tests share: a server observed in-process (gRPC, the HTTP port, a
standalone gateway in front of it over gRPC, /metrics), started once per module on a loop of
its own, with the access log's records, the spans and the metrics where tests read them.

The fixtures live here, not in a conftest.py (see tests/server/store/stores.py)."""

from __future__ import annotations

import asyncio
import logging
import threading
import urllib.request
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
from conftest import make_token_table
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from v1op_pb.server.observe import (
    ACCESS_LOGGER,
    GatewayObservation,
    Metrics,
    Observer,
    SpanMaker,
    serve_metrics,
)
from v1op_pb.server.store import SQLiteStore

START_TIMEOUT = 30.0
T = TypeVar("T")


class AccessLines(logging.Handler):
    """Every access record's fields, kept; ``wait_for`` waits for one that matches."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[dict[str, Any]] = []
        self._changed = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self._changed:
            self.lines.append(dict(record.fields))  # type: ignore[attr-defined]
            self._changed.notify_all()

    def wait_for(self, timeout: float = START_TIMEOUT, **wanted: Any) -> dict[str, Any]:
        """The first line whose fields include ``wanted`` (waiting for it to come)."""
        with self._changed:
            found = self._changed.wait_for(lambda: self._find(wanted), timeout)
            assert found, f"no access line with {wanted}; lines: {self.lines[-10:]}"
            return found

    def _find(self, wanted: dict[str, Any]) -> dict[str, Any] | None:
        for line in self.lines:
            if all(line.get(key) == value for key, value in wanted.items()):
                return line
        return None

    def count(self, **wanted: Any) -> int:
        with self._changed:
            return sum(all(line.get(k) == v for k, v in wanted.items()) for line in self.lines)


@dataclass
class Stack:
    grpc_port: int = 0
    http_port: int = 0
    gateway_port: int = 0
    metrics_port: int = 0
    gateway_metrics_port: int = 0
    tokens: dict[str, str] = field(default_factory=dict)
    spans: InMemorySpanExporter = field(default_factory=InMemorySpanExporter)
    lines: AccessLines = field(default_factory=AccessLines)
    metrics: Metrics | None = None
    store: SQLiteStore | None = None
    loop: asyncio.AbstractEventLoop | None = None

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def auth(self, principal: str) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.tokens[principal]}"),)

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the servers' loop."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(START_TIMEOUT)

    def scrape(
        self, port: int | None = None
    ) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """/metrics, parsed by prometheus-client's own parser: each sample's value by its
        name and labels."""
        url = f"http://127.0.0.1:{port or self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=START_TIMEOUT) as answer:
            text = answer.read().decode("utf-8")
        samples = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return samples


def sample(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


class StackThread:
    def __init__(self, stack: Stack, directory: str) -> None:
        self.stack = stack
        self._directory = directory
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    def start(self) -> None:
        self._thread.start()
        assert self._ready.wait(START_TIMEOUT), "the servers did not start"
        if self._error is not None:
            raise RuntimeError("the servers failed to start") from self._error

    def stop(self) -> None:
        if self.stack.loop is not None and self._stop is not None:
            self.stack.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(START_TIMEOUT)

    async def _main(self) -> None:
        from v1op_pb._registry import TypeRegistry
        from v1op_pb.gateway import RPC_SERVICES, create_http_app, open_http_port
        from v1op_pb.gateway.remote import ChannelDispatcher, open_channel
        from v1op_pb.server.app import create_servers

        stack = self.stack
        table, stack.tokens = make_token_table()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(stack.spans))
        tracing = SpanMaker(provider.get_tracer("tests"))
        stack.metrics = Metrics()
        store = stack.store = SQLiteStore(f"{self._directory}/operations.db")
        closing: list[Any] = []
        try:
            observer = Observer(metrics=stack.metrics, tracing=tracing)
            servers = await create_servers(
                "127.0.0.1:0",
                store=store,
                tokens=table,
                http_address="127.0.0.1:0",
                observer=observer,
                max_message_bytes=64 * 1024,
            )
            await servers.start()
            closing.append(servers.stop)
            stack.grpc_port, stack.http_port = servers.grpc_port, servers.http_port or 0
            exporter = serve_metrics("127.0.0.1:0", stack.metrics.registry)
            stack.metrics_port = exporter.port
            # The standalone gateway, observed by an observer of its own (as its process
            # would have), forwarding over gRPC to the server above.
            gateway_metrics = Metrics()
            observation = GatewayObservation(Observer(metrics=gateway_metrics, tracing=tracing))
            channel = open_channel(stack.grpc_target, 4 * 1024 * 1024)
            registry = TypeRegistry()
            dispatcher = observation.dispatcher(ChannelDispatcher(channel, RPC_SERVICES, registry))
            app = create_http_app(
                dispatcher, registry=registry, middlewares=[observation.middleware()]
            )
            gateway = await open_http_port("127.0.0.1:0", app, on_refusal=observation.refused)
            await gateway.start()
            stack.gateway_port = gateway.port
            gateway_exporter = serve_metrics("127.0.0.1:0", gateway_metrics.registry)
            stack.gateway_metrics_port = gateway_exporter.port
            stack.loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
        except BaseException as e:
            self._error = e
            self._ready.set()
            raise
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            gateway_exporter.close()
            exporter.close()
            await gateway.close()
            await channel.close()
            await servers.stop(1.0)
            await store.aclose()


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    made = Stack()
    access = logging.getLogger(ACCESS_LOGGER)
    level, propagate = access.level, access.propagate
    access.addHandler(made.lines)
    access.setLevel(logging.INFO)
    access.propagate = False
    thread = StackThread(made, str(tmp_path_factory.mktemp("observed")))
    try:
        thread.start()
        yield made
    finally:
        thread.stop()
        access.removeHandler(made.lines)
        access.setLevel(level)
        access.propagate = propagate
