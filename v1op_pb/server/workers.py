"""``v1op serve --workers N``: N server processes on one address, sharing one store.

The parent checks the address and the database once (so a start-up failure is one line),
holds the port, and starts each worker as ``v1op serve ... --worker``: a whole server that
binds the port with SO_REUSEPORT, so the kernel spreads new connections over the workers.
The parent restarts a worker that dies (sooner or later, by how recently it last died) and
on SIGTERM or SIGINT passes SIGTERM on to every worker, waits for each to drain, and exits.
With a metrics address, the workers keep their metrics in files of a directory the parent
makes (prometheus-client's multiprocess mode), and the parent serves their sum.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import IO

from .addresses import check_free, split_address
from .observe import (
    MULTIPROCESS_VARIABLE,
    flush_logs,
    multiprocess_directory,
    multiprocess_registry,
    serve_metrics,
    worker_exited,
)
from .store import open_store

__all__ = ["READY_PREFIX", "run_workers"]

READY_PREFIX = "v1op: serving gRPC on "
READY_TIMEOUT = 60.0
# A worker drains for up to 10 s (app.DRAIN_SECONDS); more than that is a hang.
STOP_TIMEOUT = 30.0
# A worker that dies within this of its start is restarted after a growing pause.
QUICK_DEATH_SECONDS = 5.0
MAX_PAUSE_SECONDS = 5.0
_log = logging.getLogger("v1op")


@dataclass
class _Worker:
    index: int
    process: subprocess.Popen[str]
    started: float
    ready: threading.Event = field(default_factory=threading.Event)
    quick_deaths: int = 0


def run_workers(
    serve_argv: Sequence[str],
    *,
    address: str,
    db: str,
    count: int,
    metrics_address: str | None = None,
) -> int:
    """Serve with ``count`` worker processes until SIGTERM or SIGINT; the exit status.

    ``serve_argv`` is the ``serve`` command line the workers repeat (with their address and
    ``--worker`` added). With ``metrics_address`` the parent serves the workers' metrics
    there. OSError or ValueError, before any worker starts, when an address or the database
    cannot be used.
    """
    host, _ = split_address(address)
    if metrics_address is not None:
        split_address(metrics_address)
    check_free(address)
    open_store(db).close()  # unreachable, unopenable or too new: one error, here
    with _hold_port(address) as port, contextlib.ExitStack() as stack:
        shown_host = f"[{host}]" if ":" in host else host
        command = [
            sys.executable,
            "-m",
            "v1op_pb.cli",
            *serve_argv,
            "--grpc-addr",
            f"{shown_host}:{port}",
            "--worker",
        ]
        environment = None
        on_exit = None
        lines = []
        if metrics_address is not None:
            directory = stack.enter_context(multiprocess_directory())
            environment = {**os.environ, MULTIPROCESS_VARIABLE: directory}
            exporter = serve_metrics(metrics_address, multiprocess_registry(directory))
            stack.callback(exporter.close)
            metrics_host = metrics_address.rsplit(":", 1)[0]
            lines.append(f"v1op: serving metrics on {metrics_host}:{exporter.port}")

            def on_exit(pid: int) -> None:
                worker_exited(directory, pid)

        supervisor = _Supervisor(command, count, environment=environment, on_exit=on_exit)
        return supervisor.run(f"{shown_host}:{port}", lines)


@contextlib.contextmanager
def _hold_port(address: str) -> Iterator[int]:
    """The port (a free one for port 0), bound with SO_REUSEPORT and never listened on: the
    workers' listeners join it, and no other program can take the port between restarts."""
    host, port = split_address(address)
    family, kind, proto, _, where = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    holder = socket.socket(family, kind, proto)
    try:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            holder.bind(where)
        except OSError as e:
            raise OSError(f"cannot listen on {address}: {e.strerror}") from e
        yield int(holder.getsockname()[1])
    finally:
        holder.close()


class _Supervisor:
    def __init__(
        self,
        command: list[str],
        count: int,
        *,
        environment: dict[str, str] | None = None,
        on_exit: Callable[[int], None] | None = None,
    ) -> None:
        self._command = command
        self._count = count
        self._environment = environment
        self._on_exit = on_exit
        self._stop = threading.Event()
        self._changed = threading.Event()  # a signal came: look at the workers

    def run(self, address: str, lines: Sequence[str] = ()) -> int:
        previous = {
            sig: signal.signal(sig, self._on_signal)
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD)
        }
        try:
            workers = [self._start(i) for i in range(self._count)]
            if not self._all_ready(workers):
                self._stop_all(workers)
                # Stopped while starting is a clean stop; a worker that failed said why.
                return 0 if self._stop.is_set() else 2
            pids = " ".join(str(w.process.pid) for w in workers)
            _log.info("%d workers (pids %s)", self._count, pids)
            flush_logs()
            # First: whoever reads it may act at once (a supervisor, a test).
            print(f"{READY_PREFIX}{address}", flush=True)
            for line in lines:
                print(line, flush=True)
            self._supervise(workers)
            _log.info("stopping: draining every worker")
            return self._stop_all(workers)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if signum != signal.SIGCHLD:
            self._stop.set()
        self._changed.set()

    def _start(self, index: int, quick_deaths: int = 0) -> _Worker:
        process = subprocess.Popen(
            self._command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=_die_with_parent,
            env=self._environment,
        )
        worker = _Worker(index, process, time.monotonic(), quick_deaths=quick_deaths)
        assert process.stdout is not None
        threading.Thread(
            target=_read_lines, args=(process.stdout, worker.ready), daemon=True
        ).start()
        return worker

    def _all_ready(self, workers: list[_Worker]) -> bool:
        deadline = time.monotonic() + READY_TIMEOUT
        for worker in workers:
            while not worker.ready.wait(0.05):
                if worker.process.poll() is not None or self._stop.is_set():
                    return False  # it said why on stderr
                if time.monotonic() > deadline:
                    _log.error("a worker did not start in time")
                    return False
        return True

    def _supervise(self, workers: list[_Worker]) -> None:
        restart_at: dict[int, float] = {}
        while not self._stop.is_set():
            now = time.monotonic()
            pause = min([1.0, *(at - now for at in restart_at.values())])
            self._changed.wait(max(pause, 0.0))
            self._changed.clear()
            if self._stop.is_set():
                return
            now = time.monotonic()
            for index, worker in enumerate(workers):
                if index in restart_at:
                    if now >= restart_at[index]:
                        del restart_at[index]
                        workers[index] = self._start(index, worker.quick_deaths)
                    continue
                code = worker.process.poll()
                if code is None:
                    continue
                quick = now - worker.started < QUICK_DEATH_SECONDS
                worker.quick_deaths = worker.quick_deaths + 1 if quick else 0
                pause_s = min(0.1 * 2**worker.quick_deaths, MAX_PAUSE_SECONDS) if quick else 0
                if self._on_exit is not None:
                    self._on_exit(worker.process.pid)
                _log.warning(
                    "worker %d exited with status %s; restarting it in %.1f s",
                    worker.process.pid,
                    code,
                    pause_s,
                )
                restart_at[index] = now + pause_s
                self._changed.set()

    def _stop_all(self, workers: list[_Worker]) -> int:
        """0 when every running worker drained and exited 0."""
        running = [w for w in workers if w.process.poll() is None]
        for worker in running:
            worker.process.send_signal(signal.SIGTERM)
        status = 0
        for worker in running:
            try:
                code = worker.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                code = worker.process.wait()
            # One still starting had nothing to drain: SIGTERM ends it before its handler.
            if code != 0 and not (code == -signal.SIGTERM and not worker.ready.is_set()):
                status = 1
        return status


def _read_lines(stream: IO[str], ready: threading.Event) -> None:
    """Take the worker's ready line; pass anything else it prints on to our stdout."""
    for line in stream:
        if line.startswith(READY_PREFIX):
            ready.set()
        elif not line.startswith(("v1op: serving HTTP on ", "v1op: serving metrics on ")):
            sys.stdout.write(line)
            sys.stdout.flush()


def _die_with_parent() -> None:
    """In the worker, before exec: SIGTERM when the parent dies, so that a parent killed
    with SIGKILL leaves no server behind (Linux; elsewhere a no-op)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
