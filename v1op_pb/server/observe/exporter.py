"""``/metrics``: the Prometheus text of a registry, served by prometheus-client's own HTTP
server in a thread of its own, so that a scrape never waits for the event loop (nor the
loop for it). With ``--workers`` the parent serves the sum of its workers' values, which
each worker keeps in files (prometheus-client's multiprocess mode)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..addresses import split_address

__all__ = [
    "MULTIPROCESS_VARIABLE",
    "MetricsServer",
    "multiprocess_directory",
    "multiprocess_registry",
    "serve_metrics",
    "worker_exited",
]

# Where prometheus-client's multiprocess mode keeps values; read when it is imported.
MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


@dataclass
class MetricsServer:
    """A listening /metrics; ``close()`` stops it."""

    port: int
    _server: Any
    _thread: threading.Thread

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5.0)


def serve_metrics(address: str, registry: Any) -> MetricsServer:
    """``registry`` as Prometheus text on ``address`` (``HOST:PORT``, port 0: any free);
    OSError with one line when it cannot listen there."""
    from prometheus_client import disable_created_metrics, start_http_server

    # The *_created series (a counter's start time) would double the series scraped, and
    # go-grpc-prometheus, whose dashboards these metrics serve, has none.
    disable_created_metrics()  # type: ignore[no-untyped-call]
    host, port = split_address(address)
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as e:
        raise OSError(f"cannot listen on {address} (--metrics-addr): {e.strerror or e}") from e
    return MetricsServer(int(server.server_port), server, thread)


def multiprocess_registry(directory: str) -> Any:
    """A registry whose values are the sums (or, for gauges, what each says) of the values
    every process wrote in ``directory``."""
    from prometheus_client import CollectorRegistry, multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return registry


@contextlib.contextmanager
def multiprocess_directory() -> Iterator[str]:
    """A new, empty directory for the workers' values (a directory used before would add
    the counts of processes long gone), deleted afterwards."""
    directory = tempfile.mkdtemp(prefix="v1op-metrics-")
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def worker_exited(directory: str, pid: int) -> None:
    """Drop a dead worker's live gauges (its counters and histograms still count)."""
    from prometheus_client import multiprocess

    with contextlib.suppress(OSError):
        multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]


def in_multiprocess_mode() -> bool:
    return bool(os.environ.get(MULTIPROCESS_VARIABLE))
