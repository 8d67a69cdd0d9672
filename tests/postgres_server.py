"""A throwaway PostgreSQL server for the tests (and ``bench.scale_bench``): initdb and pg_ctl
in a temporary folder, listening on 127.0.0.1 on a free port, stopped and deleted at the end.

PostgreSQL refuses to run as root; as root, the binaries run as the ``postgres`` user.
Where they (or psycopg) are missing the PostgreSQL tests skip, with the reason, unless
V1OP_REQUIRE_POSTGRES=1, which makes that a failure (CI sets it).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import count

REQUIRE = os.environ.get("V1OP_REQUIRE_POSTGRES") == "1"
START_TIMEOUT = 60


def find_binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    # Debian keeps them out of PATH, under the major version.
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else None


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL can be started here; the message says why."""


def unavailable(reason: str) -> None:
    raise PostgresUnavailable(f"no PostgreSQL to test against: {reason}")


@contextmanager
def cluster_for_tests() -> Iterator[Cluster]:
    """running_cluster, or the test skipped (failed with V1OP_REQUIRE_POSTGRES=1)."""
    import pytest

    try:
        cluster = running_cluster()
        entered = cluster.__enter__()
    except PostgresUnavailable as e:
        if REQUIRE:
            pytest.fail(f"{e} (V1OP_REQUIRE_POSTGRES=1)", pytrace=False)
        pytest.skip(str(e))
    try:
        yield entered
    finally:
        cluster.__exit__(None, None, None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Cluster:
    host: str
    port: int
    user: str
    _names: Iterator[int]

    def url(self, dbname: str) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{dbname}"

    def new_database(self) -> str:
        """The URL of a new, empty database."""
        import psycopg

        name = f"v1op_test_{next(self._names)}"
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)


@contextmanager
def running_cluster(*, durable: bool = False) -> Iterator[Cluster]:
    """A cluster for the tests (fsync off), or ``durable``: one that syncs its commits to
    disk as a production server does (for benchmarks)."""
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError as e:
        unavailable(f"psycopg is not installed ({e})")
    initdb, pg_ctl = find_binary("initdb"), find_binary("pg_ctl")
    if initdb is None or pg_ctl is None:
        unavailable("initdb and pg_ctl are not on PATH nor under /usr/lib/postgresql")
    assert initdb is not None and pg_ctl is not None
    prefix: list[str] = []
    owner: pwd.struct_passwd | None = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            unavailable("running as root and there is no postgres user to run PostgreSQL as")
        prefix = ["runuser", "-u", "postgres", "--"]
    home = tempfile.mkdtemp(prefix="v1op-pg-")
    if owner is not None:
        os.chown(home, owner.pw_uid, owner.pw_gid)
    data = os.path.join(home, "data")
    port = free_port()
    user = "v1op"

    def run(*command: str) -> None:
        result = subprocess.run(
            [*prefix, *command], capture_output=True, text=True, timeout=START_TIMEOUT
        )
        if result.returncode != 0:
            raise RuntimeError(f"{command[0]} failed: {result.stdout}{result.stderr}")

    try:
        # --no-sync and fsync=off: a test database need not survive a power cut (the server
        # processes the tests kill are v1op's, never PostgreSQL).
        run(initdb, "-D", data, "-U", user, "-A", "trust", "--no-sync", "-E", "UTF8", "--no-locale")
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={home} "
            "-c max_connections=300"
        )
        if not durable:
            options += " -c fsync=off -c full_page_writes=off"
        run(pg_ctl, "-D", data, "-l", os.path.join(home, "log"), "-o", options, "-w", "start")
        try:
            yield Cluster("127.0.0.1", port, user, count(1))
        finally:
            run(pg_ctl, "-D", data, "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(home, ignore_errors=True)
