"""Shared fixtures for the end-to-end tests of the reference gRPC server.

There is no pytest-asyncio: a grpc.aio server runs on its own event loop in a background
thread, started once per test module, and the tests talk to it over loopback with ordinary
(synchronous) gRPC clients.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import google.protobuf
import pytest
from google.protobuf.message import Message
from v1op.example.v1 import evaluation_pb2
from v1op.v1 import operation_service_pb2 as pb

from v1op_pb import Operation, pack

# The private modules, as the other tests use: importing the public v1op_pb.server would
# add a `server` attribute to the package, which test_public_api counts as a public name.
from v1op_pb.server.auth import Principal, TokenTable
from v1op_pb.server.store import SQLiteStore

if TYPE_CHECKING:
    # grpc is the optional `grpc` extra: conftest loads for every test, so it imports grpc
    # only inside the fixtures that need it.
    import grpc
    from v1op.v1 import operation_service_pb2_grpc as pb_grpc

READY_TIMEOUT = 10.0
# Users handed out one per test by Served.fresh_user, so exact list assertions hold even
# though every test of a module shares one server and one store.
SPARE_USERS = 40
EXTRA_MAX_MESSAGE = 64 * 1024

Builder = Callable[[], Awaitable[tuple["grpc.aio.Server", int]]]


class ObservedStore:
    """A SQLiteStore that tells the tests when an operation is read.

    WaitOperation registers its waiter before it reads the operation, so once that read is
    seen, a write that finishes the operation must wake the waiter: the tests wait on this
    event instead of sleeping and hoping the call reached the server.
    """

    def __init__(self, inner: SQLiteStore) -> None:
        self._inner = inner
        self._lock = threading.Lock()
        self._watches: dict[str, list[threading.Event]] = {}

    def watch_reads(self, name: str) -> threading.Event:
        """An event set by the next read of ``name``."""
        event = threading.Event()
        with self._lock:
            self._watches.setdefault(name, []).append(event)
        return event

    def _seen(self, names: Sequence[str]) -> None:
        with self._lock:
            fired = [e for name in names for e in self._watches.pop(name, [])]
        for event in fired:
            event.set()

    def insert(self, operation):
        return self._inner.insert(operation)

    async def get(self, name):
        operation = await self._inner.get(name)
        self._seen([name])
        return operation

    async def get_many(self, names):
        found = await self._inner.get_many(names)
        self._seen(names)
        return found

    def list(self, query):
        return self._inner.list(query)

    def modify(self, names, change, **options):
        return self._inner.modify(names, change, **options)

    def watch(self, on_change):
        return self._inner.watch(on_change)

    async def aclose(self) -> None:
        await self._inner.aclose()

    def close(self) -> None:
        self._inner.close()


T = TypeVar("T")


class ServerThread:
    """A grpc.aio server on its own event loop in a daemon thread."""

    def __init__(self, build: Builder, *, grace: float = 1.0) -> None:
        self._build = build
        self._grace = grace
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="grpc-aio-server", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.port = 0

    def start(self) -> ServerThread:
        self._thread.start()
        if not self._ready.wait(READY_TIMEOUT):
            raise RuntimeError("the gRPC server did not start in time")
        if self._error is not None:
            raise RuntimeError("the gRPC server failed to start") from self._error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(READY_TIMEOUT)
        assert not self._thread.is_alive(), "the gRPC server thread did not stop"

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the server's event loop (the loop its store is used on) and
        return its result."""
        assert self._loop is not None, "the server is not running"
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(READY_TIMEOUT)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        try:
            server, self.port = await self._build()
            await server.start()
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
        except BaseException as e:
            self._error = e
            self._ready.set()
            raise
        self._ready.set()
        await self._stop.wait()
        await server.stop(self._grace)


@contextmanager
def running(build: Builder) -> Iterator[ServerThread]:
    thread = ServerThread(build).start()
    try:
        yield thread
    finally:
        thread.stop()


@contextmanager
def running_with_http(store: Any, table: TokenTable) -> Iterator[tuple[ServerThread, int]]:
    """A server of every service on ``store`` with its HTTP port, both on 127.0.0.1: the
    thread (``port`` is gRPC's) and the HTTP port."""
    from v1op_pb.server.app import create_servers

    ports: dict[str, int] = {}

    async def build():
        servers = await create_servers(
            "127.0.0.1:0", store=store, tokens=table, http_address="127.0.0.1:0"
        )
        ports["http"] = servers.http_port
        return servers, servers.grpc_port

    with running(build) as thread:
        yield thread, ports["http"]


@dataclass
class Served:
    """One running server: where it listens, who may call it, and its store."""

    port: int
    table: TokenTable
    tokens: dict[str, str]  # principal name -> bearer token
    store: ObservedStore
    _spare: Iterator[str] = field(default_factory=lambda: iter(()))

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def auth(self, principal: str) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.tokens[principal]}"),)

    def fresh_user(self) -> str:
        """A user nobody in this module has used yet: its lists start empty."""
        return next(self._spare)


def make_token_table() -> tuple[TokenTable, dict[str, str]]:
    principals = [
        "services/eval",
        "services/other",
        "users/ada",
        "users/bob",
        *(f"users/spare-{i:02d}" for i in range(SPARE_USERS)),
    ]
    tokens = {name: f"token-{name.replace('/', '-')}" for name in principals}
    table = TokenTable({token: Principal(name) for name, token in tokens.items()})
    return table, tokens


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[Served]:
    """The module's server: every service, a SQLite file store, tokens for services/eval,
    services/other, users/ada, users/bob and spare users."""
    from v1op_pb.server.app import create_server

    table, tokens = make_token_table()
    store = ObservedStore(SQLiteStore(str(tmp_path_factory.mktemp("grpc") / "ops.db")))
    with running(lambda: create_server("127.0.0.1:0", store=store, tokens=table)) as thread:
        spare = (f"users/spare-{i:02d}" for i in range(SPARE_USERS))
        yield Served(thread.port, table, tokens, store, spare)
    store.close()


@pytest.fixture(scope="session")
def postgres():
    """A throwaway PostgreSQL server for the whole run (see postgres_server); its
    ``new_database()`` gives each user an empty database."""
    from postgres_server import cluster_for_tests

    with cluster_for_tests() as cluster:
        yield cluster


@pytest.fixture(scope="module")
def channel(served: Served) -> Iterator[grpc.Channel]:
    import grpc

    with grpc.insecure_channel(served.target) as ch:
        yield ch


@pytest.fixture(scope="module")
def ops(channel: grpc.Channel) -> pb_grpc.OperationServiceStub:
    from v1op.v1 import operation_service_pb2_grpc as pb_grpc

    return pb_grpc.OperationServiceStub(channel)


def make_progress(
    fraction: float = 0.25, message: str = "scoring"
) -> evaluation_pb2.EvaluationProgress:
    return evaluation_pb2.EvaluationProgress(
        progress=fraction, message=message, items_done=int(fraction * 100), items_total=100
    )


def make_result(evaluation: str = "evaluations/e1") -> evaluation_pb2.EvaluationResult:
    return evaluation_pb2.EvaluationResult(
        evaluation=evaluation,
        verdict=evaluation_pb2.EvaluationResult.VERDICT_PASSED,
        scores={"faithfulness": 0.93},
        tokens_used=2**64 - 1,
    )


@pytest.fixture(scope="module")
def make_operation(served: Served, ops: pb_grpc.OperationServiceStub) -> Callable[..., Operation]:
    """Create an operation through CreateOperation, as services/eval does for a user."""

    def make(
        owner: str = "users/ada",
        *,
        metadata: Message | None = None,
        response: Message | None = None,
        service: str = "services/eval",
    ) -> Operation:
        requested = Operation(metadata=pack(metadata if metadata is not None else make_progress()))
        if response is not None:
            requested.done = True
            requested.response.CopyFrom(pack(response))
        on_behalf_of = "" if owner == service else owner
        request = pb.CreateOperationRequest(operation=requested, on_behalf_of=on_behalf_of)
        return ops.CreateOperation(request, metadata=served.auth(service), timeout=10).operation

    return make


def extra_server(served: Served, **kwargs) -> Builder:
    """A builder for another server on the same store and tokens (different options)."""
    from v1op_pb.server.app import create_server

    return lambda: create_server("127.0.0.1:0", store=served.store, tokens=served.table, **kwargs)


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    """A CA, server and client certificates, and a wrong CA, made once per session."""
    from certs import make_certs

    return make_certs(tmp_path_factory.mktemp("certs"))


# --- json_format as an oracle, on older protobuf ------------------------------------------
# Some tests check the codec against protobuf's own json_format and so assert what
# json_format does. Older json_format differs (TypeError, KeyError or RecursionError where
# newer raises ParseError, "1e2" refused for an int32, depth counted otherwise): on such a
# protobuf (`make test-lowest`) these cases would test json_format, not this package, so
# they are skipped there, each with the release its assertion holds from, and pytest's
# summary lists them. The codec is the same Python code on every release.
_PROTOBUF = tuple(int(part) for part in google.protobuf.__version__.split(".")[:2])
# since -> test (under tests/) -> its parameter ids, () for every case.
_JSON_FORMAT_SINCE: dict[tuple[int, int], dict[str, tuple[str, ...]]] = {
    # Fail on protobuf 5.26.1 and 5.29.6, pass on 6.30.0.
    (6, 30): {
        "codec/test_codec.py::test_valid_input_reads_as_json_format_reads_it": (
            'AllTypes-{"int32Field":"1e2"}',
            'AllTypes-{"int32Field":"1.0"}',
            'AllTypes-{"int64Field":"1.5e1"}',
            'AllTypes-{"int32Field":"100e-2"}',
        ),
        "codec/test_codec.py::test_invalid_input_is_refused_by_both": (
            "Operation-null-$",
            "DoubleValue-[]-$",
            "StringValue-1-$",
            'BytesValue-"Q"-$',
            'BytesValue-"QUJDR"-$',
            "BytesValue-1-$",
            'Any-{"@type":1}-$["@type"]',
            'Any-{"@type":"type.googleapis.com/google.protobuf.Duration"}-$',
        ),
        "codec/test_codec.py::test_codec_is_stricter_than_json_format": (
            "not an integer key0",
            "not an integer key1",
            "a float zero key",
        ),
        "codec/test_codec.py::test_exponent_integer_is_read_exactly": (),
        "codec/test_codec.py::test_ignore_unknown_fields_as_json_format": (
            '{"color":"NOPE"}-{}',
            '{"colors":["RED","NOPE","GREEN"]}-{"colors":["RED","GREEN"]}',
            '{"stringToColor":{"a":"NOPE","b":"RED"}}-{"stringToColor":{"b":"RED"}}',
        ),
        "codec/test_codec.py::test_any_missing_required_fields_is_a_conversion_error": (),
        "codec/test_codec_differential.py::test_mutated_input_is_refused_when_json_format_refuses_it": (),  # noqa: E501
        "codec/test_codec_differential.py::test_each_documented_strictness_is_recognised": (
            'number text whose exact value is not an integer-{"singleInt64":"1e-400"}',
            'number text whose exact value is not an integer-{"singleUint32":"1.00000000000000001"}',  # noqa: E501
            'a map key that is not the integer\'s canonical text-{"mapInt32String":{"1.0":"x"}}',
        ),
        "codec/test_codec_differential.py::test_zero_in_exponent_form_is_an_integer": (
            '{"singleInt32":"0e50"}',
            '{"singleUint64":"-0.0e-60"}',
            '{"repeatedFixed32":["0E41"]}',
        ),
    },
    # Extensions written as "[full.name]": fail on 6.30.0, pass on 6.33.6.
    (6, 33): {
        "codec/test_codec.py::test_extensions_are_written_and_read_as_bracketed_full_names": (),
    },
    # json_format's nesting limit (and a RecursionError): fail on 7.35.0, pass on 7.36.2.
    (7, 36): {
        "codec/test_codec.py::test_nesting_beyond_max_depth_is_refused_on_input": (),
        "codec/test_codec.py::test_depth_limit_matches_json_format_for_nested_lists": ("50",),
        "codec/test_codec_differential.py::test_deeply_nested_json_is_a_conversion_error": (
            "254",
            "255",
            "1024",
            "1025",
        ),
    },
}


def _json_format_since(nodeid: str) -> tuple[int, int] | None:
    name, _, param = nodeid.removeprefix("tests/").partition("[")
    for since, tests in _JSON_FORMAT_SINCE.items():
        params = tests.get(name)
        if params is not None and (not params or param[:-1] in params):
            return since
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        since = _json_format_since(item.nodeid)
        if since is not None and since > _PROTOBUF:
            item.add_marker(
                pytest.mark.skip(
                    reason=f"asserts json_format as of protobuf {since[0]}.{since[1]}; "
                    f"this is {google.protobuf.__version__}"
                )
            )
