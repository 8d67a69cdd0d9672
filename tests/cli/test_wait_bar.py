"""``v1op wait`` draws a progress bar on a terminal, with the percent the server computes,
and says nothing when stderr is not one: the installed script with its stderr on a real
pseudo-terminal, against the module's server."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import threading
from pathlib import Path

from conftest import make_progress, make_result

from v1op_pb.client import OperationClient

SCRIPT = Path(sys.executable).parent / "v1op"
EVAL, ADA = "services/eval", "users/ada"
TIMEOUT = 60.0


class Terminal:
    """The reading end of a pseudo-terminal, collected by a thread; ``wait_for`` blocks
    until the text so far contains a string (or the writer is gone)."""

    def __init__(self) -> None:
        self.master, self.slave = pty.openpty()
        self.text = ""
        self._changed = threading.Condition()
        self._closed = False
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 4096)
            except OSError:  # EIO: every writer closed its end
                chunk = b""
            with self._changed:
                if not chunk:
                    self._closed = True
                    self._changed.notify_all()
                    return
                self.text += chunk.decode("utf-8", "replace")
                self._changed.notify_all()

    def wait_for(self, needle: str) -> bool:
        with self._changed:
            return self._changed.wait_for(
                lambda: needle in self.text or self._closed, timeout=TIMEOUT
            ) and (needle in self.text)

    def wait_closed(self) -> None:
        with self._changed:
            self._changed.wait_for(lambda: self._closed, timeout=TIMEOUT)


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("V1OP_TOKEN", "V1OP_ADDR")}


def test_wait_draws_the_servers_progress_on_a_terminal(served):
    with OperationClient(served.target, token=served.tokens[EVAL]) as service:
        created = service.create(make_progress(0.5, "scoring"), on_behalf_of=ADA)
        terminal = Terminal()
        process = subprocess.Popen(
            [str(SCRIPT), "wait", created.name, "--addr", served.target],
            stdout=subprocess.PIPE,
            stderr=terminal.slave,
            env={**env(), "V1OP_TOKEN": served.tokens[ADA]},
        )
        os.close(terminal.slave)  # the child holds it; EOF once it exits
        try:
            assert terminal.wait_for("] scoring"), terminal.text
            service.update(created.name, make_progress(0.75, "almost"))
            assert terminal.wait_for(" 75% [" + "#" * 22 + "-" * 8 + "] almost"), terminal.text
            service.finalize(created.name, response=make_result())
            out, _ = process.communicate(timeout=TIMEOUT)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        terminal.wait_closed()
    assert process.returncode == 0
    assert json.loads(out)["done"] is True
    bar_50 = "[" + "#" * 15 + "-" * 15 + "]"
    assert f" 50% {bar_50} scoring" in terminal.text
    assert f"100% [{'#' * 30}] succeeded" in terminal.text
    assert terminal.text.endswith("\r\n")  # the bar's line is ended before the shell's prompt


def test_wait_is_quiet_when_stderr_is_not_a_terminal(served):
    with OperationClient(served.target, token=served.tokens[EVAL]) as service:
        created = service.create(make_progress(0.5, "scoring"), on_behalf_of=ADA)
        service.finalize(created.name, response=make_result())
    done = subprocess.run(
        [str(SCRIPT), "wait", created.name, "--addr", served.target],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env={**env(), "V1OP_TOKEN": served.tokens[ADA]},
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert json.loads(done.stdout)["done"] is True
