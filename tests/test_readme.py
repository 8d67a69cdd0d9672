"""README.md runs as written: every shell, console and Python block, in the order a reader
meets them, in one working folder, as its own test named by the block's line.

The working folder holds what the README says a reader has: copies of examples/ and proto/
(a clone's), and the
certificates its TLS examples name (ca.pem, server.pem/server.key, client.pem/client.key,
made with openssl as tests/certs.py does). What the blocks start (``v1op serve``, ``v1op
gateway``) keeps running, in the background, until the last block has run, and must then
stop on SIGTERM with exit status 0: later blocks talk to it, as a reader's second terminal
would. Each address the README names (127.0.0.1:50051, :8080, ...) is given a free port of
its own for the run, the same everywhere it appears. ``$DATABASE_URL`` is a throwaway
PostgreSQL database.

- ``sh``/``bash``: the block is a bash script (``set -e -o pipefail``); a ``v1op serve`` or
  ``v1op gateway`` line starts in the background, and the script goes on once it has said
  it is serving. ``make`` lines run at the root of the repository, where a clone has them.
- ``console``: each ``$ command`` runs, and what it prints (stdout and stderr, as a terminal
  interleaves them) must be the lines shown after it.
- ``python``: a fresh interpreter runs the block (tests/readme_blocks.py); a line
  ``expression  # <Python literal>`` claims that value, and is checked.

A fenced block without a language fails: every block must say what it is.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from readme_blocks import Block, read_blocks

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
RUNNER = Path(__file__).resolve().parent / "readme_blocks.py"
BIN = Path(sys.executable).parent
SHELL, CONSOLE, PYTHON = {"sh", "bash", "shell"}, {"console"}, {"python", "py"}
# Languages of blocks that are not commands (configuration, text a command prints).
NOT_RUN = {"text", "toml", "yaml", "json", "proto", "ini", "nginx"}
BLOCKS = read_blocks(README)
ADDRESS = re.compile(r"\b(127\.0\.0\.1|localhost):(\d{4,5})\b")
DAEMON = re.compile(r"^\s*v1op\s+(serve|gateway)\b")
EXPORT = re.compile(r"^\s*export\s")
LISTENS = re.compile(r"--(grpc|http)-addr\b")
BLOCK_TIMEOUT = 120.0
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Daemon:
    block: Block
    command: str
    process: subprocess.Popen[str]
    stderr: Path


@dataclass
class Workspace:
    """The reader's folder, the ports of the run, and what the blocks started."""

    folder: Path
    env: dict[str, str]
    database_url: str | None
    ports: dict[str, int] = field(default_factory=dict)
    daemons: list[Daemon] = field(default_factory=list)
    outcomes: dict[int, BaseException | None] = field(default_factory=dict)

    def localize(self, text: str) -> str:
        """The README's addresses, each on its free port of this run."""

        def port(match: re.Match[str]) -> str:
            readme_port = match[2]
            if readme_port not in self.ports:
                self.ports[readme_port] = free_port()
            return f"{match[1]}:{self.ports[readme_port]}"

        return ADDRESS.sub(port, text)

    def run_up_to(self, block: Block) -> None:
        """Run every block before ``block`` (once each), then ``block``; raise its failure."""
        for earlier in BLOCKS:
            if earlier.line not in self.outcomes:
                try:
                    run_block(self, earlier)
                except BaseException as e:  # remembered; its own test reports it
                    self.outcomes[earlier.line] = e
                else:
                    self.outcomes[earlier.line] = None
            if earlier is block:
                break
        failure = self.outcomes[block.line]
        if isinstance(failure, pytest.skip.Exception):
            raise failure
        if failure is not None:
            raise AssertionError(f"{block.where} ({block.heading}): {failure}") from failure

    def stop(self) -> list[str]:
        problems = []
        for daemon in reversed(self.daemons):
            if daemon.process.poll() is None:
                daemon.process.send_signal(signal.SIGTERM)
            try:
                code = daemon.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                daemon.process.kill()
                code = daemon.process.wait()
            if code != 0:
                problems.append(
                    f"{daemon.block.where}: `{daemon.command}` exited {code} on SIGTERM: "
                    + daemon.stderr.read_text()[-2000:]
                )
        return problems


def run_block(ws: Workspace, block: Block) -> None:
    if block.lang in SHELL:
        run_shell(ws, block)
    elif block.lang in CONSOLE:
        run_console(ws, block)
    elif block.lang in PYTHON:
        run_python(ws, block)
    elif block.lang in NOT_RUN:
        return
    elif not block.lang:
        raise AssertionError(
            "a fenced block without a language: say what it is (sh, console, python, text)"
        )
    else:
        raise AssertionError(f"a block in {block.lang!r}: teach tests/test_readme.py to run it")


def needs_database(ws: Workspace, text: str) -> None:
    if "DATABASE_URL" in text and ws.database_url is None:
        pytest.skip("the block needs PostgreSQL ($DATABASE_URL), which is not available here")


def logical_lines(text: str) -> list[str]:
    """The block's commands: lines joined where they end in a backslash."""
    lines: list[str] = []
    pending = ""
    for line in text.splitlines():
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        lines.append(pending + line)
        pending = ""
    if pending:
        lines.append(pending)
    return lines


def run_script(ws: Workspace, block: Block, script: str) -> None:
    if not script.strip():
        return
    cwd = ROOT if script.lstrip().startswith("make ") else ws.folder
    done = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=ws.env,
        timeout=BLOCK_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(
            f"exit status {done.returncode}\n--- script\n{script}\n--- stdout\n"
            f"{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
        )


def start_daemon(ws: Workspace, block: Block, command: str, exports: list[str]) -> None:
    """Start a server line in the background, in the environment the block's ``export``
    lines before it made (as the reader's shell would have it), and wait for each of its
    ``serving`` lines."""
    code = command.split("#", 1)[0].strip()  # a trailing comment is not an argument
    stderr = ws.folder / f".daemon-{block.line}-{len(ws.daemons)}.err"
    process = subprocess.Popen(
        ["bash", "-e", "-c", "\n".join([*exports, f"exec {code}"])],
        stdout=subprocess.PIPE,
        stderr=stderr.open("w"),
        text=True,
        cwd=ws.folder,
        env=ws.env,
    )
    daemon = Daemon(block, code, process, stderr)
    ws.daemons.append(daemon)
    expected = max(len(LISTENS.findall(code)), 1)
    ready = threading.Event()
    seen: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("v1op: serving "):
                seen.append(line)
                if len(seen) >= expected:
                    ready.set()
        ready.set()  # the process is gone: let the waiter find out

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(READY_TIMEOUT) or len(seen) < expected:
        raise AssertionError(
            f"`{code}` did not say it was serving (exit status {process.poll()}):\n"
            + stderr.read_text()[-3000:]
        )


def run_shell(ws: Workspace, block: Block) -> None:
    text = ws.localize(block.text)
    needs_database(ws, text)
    chunk: list[str] = []
    exports: list[str] = []
    for line in logical_lines(text):
        if DAEMON.match(line):
            run_script(ws, block, "\n".join(chunk))
            chunk = []
            start_daemon(ws, block, line, exports)
        else:
            chunk.append(line)
            if EXPORT.match(line):
                exports.append(line)
    run_script(ws, block, "\n".join(chunk))


def run_console(ws: Workspace, block: Block) -> None:
    text = ws.localize(block.text)
    needs_database(ws, text)
    steps: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif steps:
            steps[-1][1].append(line)
        elif line.strip():
            raise AssertionError(f"a console block starts with {line!r}, not with `$ command`")
    for command, expected in steps:
        done = subprocess.run(
            ["bash", "-o", "pipefail", "-c", command],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,  # one stream, in the order a terminal shows them
            text=True,
            cwd=ws.folder,
            env=ws.env,
            timeout=BLOCK_TIMEOUT,
            check=False,
        )
        printed = done.stdout.rstrip("\n").splitlines()
        want = "\n".join(expected).rstrip("\n").splitlines()
        assert printed == want, f"`$ {command}` printed:\n" + "\n".join(printed)


def run_python(ws: Workspace, block: Block) -> None:
    text = ws.localize(block.text)
    needs_database(ws, text)
    source = ws.folder / f".block-{block.line}.py"
    source.write_text(text, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(RUNNER), str(source), str(block.first_line), str(README)],
        capture_output=True,
        text=True,
        cwd=ws.folder,
        env=ws.env,
        timeout=BLOCK_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(
            f"exit status {done.returncode}\n--- stdout\n{done.stdout[-3000:]}\n"
            f"--- stderr\n{done.stderr[-4000:]}"
        )


def reader_env() -> dict[str, str]:
    # A reader's environment: none of ours (tokens, addresses, the pure-Python switch).
    env = {k: v for k, v in os.environ.items() if not k.startswith("V1OP_")}
    # The README's walk through the HTTP port uses buf (`npm install -g @bufbuild/buf`, it
    # says); `make test` installs it into .tools.
    buf = ROOT / ".tools" / "node_modules" / ".bin"
    env["PATH"] = os.pathsep.join([str(BIN), str(buf), env.get("PATH", "")])
    env.pop("PYTHONPATH", None)
    return env


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, certs, request) -> Iterator[Workspace]:
    folder = tmp_path_factory.mktemp("readme")
    shutil.copytree(ROOT / "examples", folder / "examples")
    shutil.copytree(ROOT / "proto", folder / "proto")
    for name, source in {
        "ca.pem": certs.ca,
        "server.pem": certs.server_cert,
        "server.key": certs.server_key,
        "client.pem": certs.client_cert,
        "client.key": certs.client_key,
    }.items():
        shutil.copyfile(source, folder / name)
    database_url = None
    if any("DATABASE_URL" in block.text for block in BLOCKS):
        try:
            database_url = request.getfixturevalue("postgres").new_database()
        except pytest.skip.Exception:
            database_url = None
    env = reader_env()
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    ws = Workspace(folder, env, database_url)
    try:
        yield ws
    finally:
        problems = ws.stop()
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "block", BLOCKS, ids=[f"line{block.line}-{block.lang or 'none'}" for block in BLOCKS]
)
def test_readme_block(workspace, block):
    workspace.run_up_to(block)


def test_the_readme_has_blocks_of_each_kind():
    # The harness reads what it should: a broken fence pattern would pass vacuously.
    languages = {block.lang for block in BLOCKS}
    assert {"sh", "console", "python"} <= languages, languages
    assert len(BLOCKS) >= 20


def test_shell_lines_are_split_as_bash_would():
    assert logical_lines("a \\\n  b\nc\n") == ["a    b", "c"]
    assert shlex.split(logical_lines("v1op get x \\\n --addr y\n")[0]) == [
        "v1op",
        "get",
        "x",
        "--addr",
        "y",
    ]
