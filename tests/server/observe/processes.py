"""Real ``v1op serve`` and ``v1op gateway`` processes for the observation tests: started with
their ready lines read (the ports of gRPC, HTTP and /metrics), stderr kept in a file or a
pipe, stopped with SIGTERM; and the lines they wrote, waited for."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from prometheus_client.parser import text_string_to_metric_families

SCRIPT = Path(sys.executable).parent / "v1op"
START_TIMEOUT = 60.0
READY = re.compile(r"v1op: serving (gRPC|HTTP|HTTPS|metrics) on [^ ]+:(\d+)")


def environment(**extra: str) -> dict[str, str]:
    """The test's environment without the variables that would change what is tested: no
    V1OP_* (options), no GRPC_VERBOSITY (the server silences the C core itself), no OTEL_*
    unless given."""
    kept = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("V1OP_", "OTEL_", "PROMETHEUS_")) and k != "GRPC_VERBOSITY"
    }
    return {**kept, **extra}


@dataclass
class Process:
    process: subprocess.Popen[str]
    ports: dict[str, int]
    stderr_path: Path | None
    stdout_rest: list[str] = field(default_factory=list)

    def stderr(self) -> str:
        assert self.stderr_path is not None
        return self.stderr_path.read_text(encoding="utf-8")

    def stderr_lines(self) -> list[str]:
        return [line for line in self.stderr().splitlines() if line]

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
        if self.process.stdout is not None:
            self.stdout_rest.append(self.process.stdout.read())
        return code

    def wait_for_stderr(self, text: str, timeout: float = START_TIMEOUT) -> str:
        """The first stderr line holding ``text``, once it is written."""
        done = threading.Event()
        timer = threading.Timer(timeout, done.set)
        timer.start()
        try:
            while True:
                for line in self.stderr_lines():
                    if text in line:
                        return line
                if done.is_set():
                    raise AssertionError(f"no stderr line with {text!r}: {self.stderr()[-3000:]}")
                done.wait(0.05)
        finally:
            timer.cancel()

    def scrape(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        url = f"http://127.0.0.1:{self.ports['metrics']}/metrics"
        with urllib.request.urlopen(url, timeout=30) as answer:
            text = answer.read().decode("utf-8")
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }


def launch(
    directory: Path,
    argv: list[str],
    *,
    expect: tuple[str, ...] = ("gRPC",),
    env: dict[str, str] | None = None,
    stderr: IO[str] | None = None,
) -> Process:
    """``v1op *argv``, once the ready lines of ``expect`` (gRPC, HTTP, metrics) came."""
    stderr_path = None
    if stderr is None:
        stderr_path = directory / f"v1op-{time.monotonic_ns()}.err"
        stderr = open(stderr_path, "w", encoding="utf-8")  # noqa: SIM115 (the child keeps it)
    process = subprocess.Popen(
        [str(SCRIPT), *argv],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        env=env if env is not None else environment(),
    )
    if stderr_path is not None:
        stderr.close()
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout

    def read() -> None:
        for _ in expect:
            lines.put(stdout.readline())

    threading.Thread(target=read, daemon=True).start()
    ports: dict[str, int] = {}
    for _ in expect:
        try:
            line = lines.get(timeout=START_TIMEOUT)
        except queue.Empty:
            line = ""
        match = READY.match(line)
        if match is None:
            process.kill()
            process.wait()
            where = stderr_path.read_text() if stderr_path is not None else ""
            raise AssertionError(f"no ready line (got {line!r}); stderr: {where}")
        kind = match.group(1)
        ports["HTTP" if kind == "HTTPS" else kind] = int(match.group(2))
    assert set(ports) == set(expect), ports
    return Process(process, ports, stderr_path)


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of ``text`` as JSON: AssertionError naming the first that is not."""
    parsed = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            value = json.loads(line)
        except ValueError:
            raise AssertionError(f"line {number} is not JSON: {line!r}") from None
        assert isinstance(value, dict), line
        parsed.append(value)
    return parsed


def write_tokens(directory: Path, tokens: dict[str, str]) -> Path:
    path = directory / "tokens.txt"
    path.write_text("".join(f"{token} {who}\n" for token, who in tokens.items()))
    return path
