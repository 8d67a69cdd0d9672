"""End-to-end tests of REST on the HTTP port: the documented client, plain HTTP and
google-api-core against one server whose HTTP port calls its services in-process.

One background thread runs, on its own event loop, the gRPC server with its HTTP port and
four more HTTP apps: the standalone gateway's (over a gRPC channel to the server), one on the
server's own dispatcher with a tiny body cap, one serving google.longrunning.Operations over
REST (the only service whose HTTP requests have a bool query field), and a standalone one
whose gRPC target is a closed port. The `v1op serve --http-addr` and `v1op gateway` commands
run as subprocesses.
"""

from __future__ import annotations

import asyncio
import datetime
import http.client
import json
import queue
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import eval_studio_client
import grpc
import pytest
from aiohttp.test_utils import TestClient, TestServer
from conftest import SPARE_USERS, make_progress, make_result, make_token_table
from eval_studio_client.api import (
    ApiClient,
    ApiException,
    Configuration,
    OperationProgressServiceApi,
    OperationServiceApi,
)
from eval_studio_client.api.models import (
    ProtobufAny,
    RequiredTheOperationToFinalize,
    RequiredTheOperationToUpdate,
    RpcStatus,
)
from eval_studio_client.api.models import V1Operation as DocumentedV1Operation
from google.api import annotations_pb2, http_pb2
from google.api_core import operations_v1
from google.longrunning import operations_proto_pb2
from google.protobuf import descriptor_pb2, descriptor_pool, struct_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2
from v1op.v1 import operation_service_pb2 as pb
from v1op.v1 import operation_service_pb2_grpc as pb_grpc

from v1op_pb import Operation, Status, from_dict, make_status, pack, status_details, to_dict, unpack
from v1op_pb._registry import TypeRegistry
from v1op_pb.gateway import (
    RPC_SERVICES,
    ChannelDispatcher,
    create_http_app,
    open_channel,
    open_http_port,
)
from v1op_pb.server.app import create_servers
from v1op_pb.server.store import SQLiteStore

UTC = datetime.timezone.utc
READY_TIMEOUT = 10.0
HTTP_TIMEOUT = 10.0
SMALL_BODY_BYTES = 256
SCRIPT = Path(sys.executable).parent / "v1op"
EXAMPLE_TYPES = ["--import", "v1op.example.v1.evaluation_pb2"]
SWAGGER = Path(eval_studio_client.__file__).parent / "gen/openapiv2/eval_studio.swagger.json"
DOCUMENTED_TAGS = {"OperationService", "OperationProgressService"}
STRUCT_URL = "type.googleapis.com/google.protobuf.Struct"
MISSING_NAME = "operations/00000000-0000-4000-8000-000000000000"
STRING_FIELDS = ["name", "creator", "updater", "deleter"]
TIME_FIELDS = ["create_time", "update_time", "delete_time", "seen_by_creator_time"]
# Every field, as a gateway's default JSON has them; error and response are the oneof
# `result`, of which protojson's EmitUnpopulated writes only the member that is set.
OPERATION_KEYS = {
    "name",
    "createTime",
    "creator",
    "updateTime",
    "updater",
    "deleteTime",
    "deleter",
    "metadata",
    "done",
    "seenByCreatorTime",
}
STATUS_KEYS = {"code", "message", "details"}
LRO_SERVICE = operations_proto_pb2.DESCRIPTOR.services_by_name["Operations"]


# --- the module's servers ------------------------------------------------------------------


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Stack:
    """The gRPC server and the gateways in front of it, with who may call them."""

    grpc_port: int = 0
    http_port: int = 0  # the server's HTTP port: the documented services, in-process
    remote_port: int = 0  # the documented services, over a gRPC channel to the server
    small_port: int = 0  # the documented services, in-process, max_body_bytes=SMALL_BODY_BYTES
    lro_port: int = 0  # google.longrunning.Operations, in-process
    dead_port: int = 0  # the documented services, gRPC channel to a closed port
    tokens: dict[str, str] = field(default_factory=dict)
    _spare: Iterator[str] = field(default_factory=lambda: iter(()))

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def auth(self, principal: str) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.tokens[principal]}"),)

    def fresh_user(self) -> str:
        """A user nobody in this module has used yet: its lists start empty."""
        return next(self._spare)


class StackThread:
    """The servers of a Stack on their own event loop in a daemon thread."""

    def __init__(self, stack: Stack, table) -> None:
        self.stack = stack
        self._table = table
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gateway-stack", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None

    def start(self) -> StackThread:
        self._thread.start()
        if not self._ready.wait(READY_TIMEOUT):
            raise RuntimeError("the servers did not start in time")
        if self._error is not None:
            raise RuntimeError("the servers failed to start") from self._error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(READY_TIMEOUT)
        assert not self._thread.is_alive(), "the server thread did not stop"

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        store = SQLiteStore(":memory:")
        ports, channels, servers = [], [], None
        try:
            try:
                servers = await create_servers(
                    "127.0.0.1:0", store=store, tokens=self._table, http_address="127.0.0.1:0"
                )
                await servers.start()
                self.stack.grpc_port = servers.grpc_port
                self.stack.http_port = servers.http_port
                registry = TypeRegistry()
                live = open_channel(self.stack.grpc_target, 4 * 1024 * 1024)
                dead = open_channel(f"127.0.0.1:{closed_port()}", 4 * 1024 * 1024)
                channels += [live, dead]
                for attribute, dispatcher, services, cap in [
                    ("remote_port", ChannelDispatcher(live, RPC_SERVICES, registry), None, None),
                    ("small_port", servers.dispatcher, None, SMALL_BODY_BYTES),
                    ("lro_port", servers.dispatcher, (LRO_SERVICE,), None),
                    ("dead_port", ChannelDispatcher(dead, RPC_SERVICES, registry), None, None),
                ]:
                    options: dict[str, Any] = {"registry": registry}
                    if cap is not None:
                        options["max_body_bytes"] = cap
                    if services is not None:
                        options["rest_services"] = services
                    port = await open_http_port(
                        "127.0.0.1:0", create_http_app(dispatcher, **options)
                    )
                    await port.start()
                    ports.append(port)
                    setattr(self.stack, attribute, port.port)
                self._loop = asyncio.get_running_loop()
                self._stop = asyncio.Event()
            except BaseException as e:
                self._error = e
                raise
            finally:
                self._ready.set()
            await self._stop.wait()
        finally:
            for port in ports:
                await port.close()
            for channel in channels:
                await channel.close()
            if servers is not None:
                await servers.stop(1.0)
            store.close()


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    table, tokens = make_token_table()
    spare = (f"users/spare-{i:02d}" for i in range(SPARE_USERS))
    thread = StackThread(Stack(tokens=tokens, _spare=spare), table).start()
    try:
        yield thread.stack
    finally:
        thread.stop()


@pytest.fixture(scope="module")
def channel(stack: Stack) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(stack.grpc_target) as ch:
        yield ch


@pytest.fixture(scope="module")
def ops(channel: grpc.Channel) -> pb_grpc.OperationServiceStub:
    return pb_grpc.OperationServiceStub(channel)


# --- factories -------------------------------------------------------------------------------


def make_operation(
    stack: Stack,
    ops: pb_grpc.OperationServiceStub,
    owner: str = "users/ada",
    *,
    metadata: Message | None = None,
    response: Message | None = None,
    error: Status | None = None,
) -> Operation:
    """Created through gRPC, as services/eval for ``owner``: REST has no Create."""
    requested = Operation(metadata=pack(metadata if metadata is not None else make_progress()))
    if response is not None:
        requested.done = True
        requested.response.CopyFrom(pack(response))
    elif error is not None:
        requested.done = True
        requested.error.CopyFrom(error)
    request = pb.CreateOperationRequest(operation=requested, on_behalf_of=owner)
    return ops.CreateOperation(request, metadata=stack.auth("services/eval"), timeout=10).operation


def make_error() -> Status:
    return make_status(
        code_pb2.FAILED_PRECONDITION,
        "dataset is empty",
        [error_details_pb2.ErrorInfo(reason="EMPTY_DATASET", domain="eval.example.com")],
    )


def make_struct_any(**values: Any) -> dict[str, Any]:
    """A documented-shape Any holding a google.protobuf.Struct."""
    return {"@type": STRUCT_URL, "value": values}


def make_api(stack: Stack, principal: str | None) -> ApiClient:
    """The documented client's ApiClient, as ``principal`` (None: no Authorization)."""
    client = ApiClient(Configuration(host=f"http://127.0.0.1:{stack.http_port}"))
    if principal is not None:
        client.set_default_header("Authorization", f"Bearer {stack.tokens[principal]}")
    return client


def make_operations_api(stack: Stack, principal: str | None) -> OperationServiceApi:
    return OperationServiceApi(make_api(stack, principal))


def grpc_get(stack: Stack, ops: pb_grpc.OperationServiceStub, name: str) -> Operation:
    request = pb.GetOperationRequest(name=name)
    return ops.GetOperation(request, metadata=stack.auth("services/eval"), timeout=10).operation


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


def call(
    port: int,
    method: str,
    path: str,
    *,
    token: str | None = None,
    body: bytes | None = None,
    content_type: str | None = "application/json",
    chunked: bool = False,
) -> Reply:
    """One plain HTTP request, no client library between the test and the gateway."""
    headers = {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if body is not None and content_type is not None:
        headers["Content-Type"] = content_type
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT)
    try:
        payload: Any = body
        if chunked and body is not None:
            payload = iter([body[i : i + 100] for i in range(0, len(body), 100)])
        connection.request(method, path, payload, headers, encode_chunked=chunked)
        response = connection.getresponse()
        return Reply(response.status, response.headers, response.read().decode("utf-8"))
    finally:
        connection.close()


def call_as(stack: Stack, principal: str, method: str, path: str, **kwargs: Any) -> Reply:
    return call(stack.http_port, method, path, token=stack.tokens[principal], **kwargs)


def json_body(value: Any) -> bytes:
    return json.dumps(value).encode("utf-8")


# --- comparing what REST returns with what gRPC holds --------------------------------------


def held_time(held: Operation, name: str) -> datetime.datetime | None:
    """A Timestamp field cut to microseconds, as the documented client keeps it."""
    if not held.HasField(name):
        return None
    return getattr(held, name).ToDatetime(tzinfo=UTC)


def held_payload(held: Operation, name: str) -> Message | None:
    return unpack(getattr(held, name)) if held.HasField(name) else None


def documented_payload(value: ProtobufAny | None, name: str) -> Message | None:
    """The message a documented Any holds, read back through the proto3 JSON mapping."""
    if value is None:
        return None
    return unpack(getattr(from_dict({name: value.to_dict()}), name))


def documented_error(value: RpcStatus | None) -> tuple[int, str, list[Message]] | None:
    if value is None:
        return None
    status = from_dict({"error": value.to_dict()}).error
    return status.code, status.message, status_details(status)


def held_error(held: Operation) -> tuple[int, str, list[Message]] | None:
    if not held.HasField("error"):
        return None
    return held.error.code, held.error.message, status_details(held.error)


def assert_documented_agrees(
    documented: DocumentedV1Operation, held: Operation, *, full: bool = True
) -> None:
    """Field by field; ``full=False`` is OPERATION_VIEW_BASIC, which leaves out response."""
    for name in STRING_FIELDS:
        assert getattr(documented, name) == getattr(held, name), name
    for name in TIME_FIELDS:
        assert getattr(documented, name) == held_time(held, name), name
    assert documented.done is held.done
    assert documented_payload(documented.metadata, "metadata") == held_payload(held, "metadata")
    expected_response = held_payload(held, "response") if full else None
    assert documented_payload(documented.response, "response") == expected_response
    assert documented_error(documented.error) == held_error(held)


def assert_raw_agrees(raw: dict[str, Any], held: Operation) -> None:
    """The gateway's JSON, every field present, reads back as exactly what gRPC holds (to
    the nanosecond, which the documented client cannot check)."""
    assert set(raw) == OPERATION_KEYS | ({held.WhichOneof("result")} - {None})
    assert to_dict(from_dict(raw)) == to_dict(held)


def assert_status_body(reply: Reply, http_status: int, code: int) -> dict[str, Any]:
    """A google.rpc.Status JSON body, never a traceback or an HTML page."""
    assert reply.status == http_status, reply.text
    assert reply.headers.get_content_type() == "application/json"
    assert "Traceback" not in reply.text
    status = reply.json()
    assert set(status) == STATUS_KEYS
    assert status["code"] == code
    assert isinstance(status["message"], str) and status["message"]
    return status


def assert_api_error(raised: pytest.ExceptionInfo[ApiException], http_status: int, code: int):
    assert raised.value.status == http_status
    assert "Traceback" not in raised.value.body
    status = json.loads(raised.value.body)
    assert set(status) == STATUS_KEYS
    assert status["code"] == code
    return status


# --- the documented client, every method -----------------------------------------------------


def test_get_operation(stack, ops):
    created = make_operation(stack, ops)

    got = make_operations_api(stack, "users/ada").operation_service_get_operation(created.name)

    assert_documented_agrees(got.operation, grpc_get(stack, ops, created.name))


def test_get_of_a_failed_operation_carries_the_typed_error(stack, ops):
    created = make_operation(stack, ops, error=make_error())

    got = make_operations_api(stack, "users/ada").operation_service_get_operation(created.name)

    assert got.operation.error.code == code_pb2.FAILED_PRECONDITION
    assert_documented_agrees(got.operation, grpc_get(stack, ops, created.name))


def test_batch_get_operations_keeps_the_order_asked_for(stack, ops):
    first, second = make_operation(stack, ops), make_operation(stack, ops, response=make_result())
    api = make_operations_api(stack, "users/ada")

    got = api.operation_service_batch_get_operations(names=[second.name, first.name])

    assert [o.name for o in got.operations] == [second.name, first.name]
    for documented in got.operations:
        assert_documented_agrees(documented, grpc_get(stack, ops, documented.name))


def test_list_operations(stack, ops):
    user = stack.fresh_user()
    created = [make_operation(stack, ops, user) for _ in range(3)]
    api = make_operations_api(stack, user)

    everything = api.operation_service_list_operations()
    page = api.operation_service_list_operations(page_size=2)

    assert [o.name for o in everything.operations] == [o.name for o in created]
    assert everything.total_size == 3
    assert [o.name for o in page.operations] == [o.name for o in created[:2]]
    assert page.total_size == 3
    for documented in everything.operations:
        assert_documented_agrees(documented, grpc_get(stack, ops, documented.name))


@pytest.mark.parametrize(
    ("view", "full"),
    [("OPERATION_VIEW_BASIC", False), ("OPERATION_VIEW_FULL", True), (None, True)],
)
def test_list_unseen_operations(stack, ops, view, full):
    user = stack.fresh_user()
    make_operation(stack, ops, user)  # running: not in the unseen list
    finished = make_operation(stack, ops, user, response=make_result())
    api = make_operations_api(stack, user)

    got = api.operation_service_list_unseen_operations(view=view)

    assert [o.name for o in got.operations] == [finished.name]
    assert got.total_size == 1
    assert_documented_agrees(got.operations[0], grpc_get(stack, ops, finished.name), full=full)


def test_update_operation_with_a_model_the_client_built(stack, ops):
    created = make_operation(stack, ops)
    metadata = ProtobufAny.from_dict(make_struct_any(progress=0.5, message="half way"))
    # The documented signature takes RequiredTheOperationToUpdate, not V1Operation: the body
    # is the V1Operation's own request form.
    body = RequiredTheOperationToUpdate.from_dict(
        DocumentedV1Operation(metadata=metadata).to_dict()
    )
    api = make_operations_api(stack, "services/eval")

    updated = api.operation_service_update_operation(created.name, body).operation

    held = grpc_get(stack, ops, created.name)
    assert_documented_agrees(updated, held)
    assert held.updater == "services/eval"
    assert unpack(held.metadata) == struct_pb2.Struct(
        fields={
            "progress": struct_pb2.Value(number_value=0.5),
            "message": struct_pb2.Value(string_value="half way"),
        }
    )


def test_finalize_operation_with_a_response(stack, ops):
    created = make_operation(stack, ops)
    response = ProtobufAny.from_dict(make_struct_any(verdict="passed", score=0.93))
    model = DocumentedV1Operation(done=True, response=response)
    body = RequiredTheOperationToFinalize.from_dict(model.to_dict())
    api = make_operations_api(stack, "services/eval")

    finalized = api.operation_service_finalize_operation(created.name, body).operation

    held = grpc_get(stack, ops, created.name)
    assert_documented_agrees(finalized, held)
    assert held.done and held.WhichOneof("result") == "response"
    assert unpack(held.response)["verdict"] == "passed"


def test_finalize_operation_with_an_error(stack, ops):
    created = make_operation(stack, ops)
    detail = ProtobufAny.from_dict(
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "MODEL_TIMEOUT",
            "domain": "eval.example.com",
            "metadata": {"model": "danube"},
        }
    )
    error = RpcStatus(code=code_pb2.DEADLINE_EXCEEDED, message="model timed out", details=[detail])
    body = RequiredTheOperationToFinalize.from_dict(
        DocumentedV1Operation(done=True, error=error).to_dict()
    )
    api = make_operations_api(stack, "services/eval")

    finalized = api.operation_service_finalize_operation(created.name, body).operation

    held = grpc_get(stack, ops, created.name)
    assert_documented_agrees(finalized, held)
    assert held_error(held) == (
        code_pb2.DEADLINE_EXCEEDED,
        "model timed out",
        [
            error_details_pb2.ErrorInfo(
                reason="MODEL_TIMEOUT", domain="eval.example.com", metadata={"model": "danube"}
            )
        ],
    )


def test_abort_operation(stack, ops):
    created = make_operation(stack, ops)

    aborted = make_operations_api(stack, "users/ada").operation_service_abort_operation(
        created.name
    )

    held = grpc_get(stack, ops, created.name)
    assert_documented_agrees(aborted.operation, held)
    assert held.done and held.error.code == code_pb2.CANCELLED


def test_mark_operation_seen_by_creator_sets_the_time_once(stack, ops):
    created = make_operation(stack, ops, response=make_result())
    api = make_operations_api(stack, "users/ada")

    first = api.operation_service_mark_operation_seen_by_creator(created.name).operation
    again = api.operation_service_mark_operation_seen_by_creator(created.name).operation

    held = grpc_get(stack, ops, created.name)
    assert held.HasField("seen_by_creator_time")
    assert_documented_agrees(first, held)
    assert_documented_agrees(again, held)


def test_batch_mark_operation_seen_by_creator(stack, ops):
    names = [make_operation(stack, ops, response=make_result()).name for _ in range(2)]
    api = make_operations_api(stack, "users/ada")

    marked = api.operation_service_batch_mark_operation_seen_by_creator(names=names)

    assert [o.name for o in marked.operations] == names
    for documented in marked.operations:
        held = grpc_get(stack, ops, documented.name)
        assert held.HasField("seen_by_creator_time")
        assert_documented_agrees(documented, held)


def test_get_operation_progress_by_parent(stack, ops, channel):
    created = make_operation(stack, ops, metadata=make_progress(0.75, "judging"))
    api = OperationProgressServiceApi(make_api(stack, "users/ada"))

    got = api.operation_progress_service_get_operation_progress_by_parent(created.name)

    held = (
        pb_grpc.OperationProgressServiceStub(channel)
        .GetOperationProgressByParent(
            pb.GetOperationProgressByParentRequest(parent=created.name),
            metadata=stack.auth("users/ada"),
            timeout=10,
        )
        .operation_progress
    )
    progress = got.operation_progress
    assert (progress.name, progress.parent, progress.progress, progress.message) == (
        held.name,
        held.parent,
        held.progress,
        held.message,
    )
    assert (progress.parent, progress.progress, progress.message) == (
        created.name,
        0.75,
        "judging",
    )


# --- the documented client's errors ----------------------------------------------------------


def test_a_missing_operation_is_404(stack):
    api = make_operations_api(stack, "users/ada")

    with pytest.raises(ApiException, match=re.escape("(404)")) as raised:
        api.operation_service_get_operation(MISSING_NAME)

    status = assert_api_error(raised, 404, code_pb2.NOT_FOUND)
    assert status["details"][0]["resourceName"] == MISSING_NAME


@pytest.mark.parametrize("principal", [None, "unknown"])
def test_a_missing_or_unknown_token_is_401(stack, ops, principal):
    created = make_operation(stack, ops)
    client = make_api(stack, None)
    if principal is not None:
        client.set_default_header("Authorization", "Bearer no-such-token")

    with pytest.raises(ApiException, match=re.escape("(401)")) as raised:
        OperationServiceApi(client).operation_service_get_operation(created.name)

    assert_api_error(raised, 401, code_pb2.UNAUTHENTICATED)


def test_another_users_operation_is_403(stack, ops):
    created = make_operation(stack, ops, "users/ada")
    api = make_operations_api(stack, "users/bob")

    with pytest.raises(ApiException, match=re.escape("(403)")) as raised:
        api.operation_service_get_operation(created.name)

    assert_api_error(raised, 403, code_pb2.PERMISSION_DENIED)


@pytest.mark.parametrize(
    "method",
    [
        "operation_service_batch_get_operations",
        "operation_service_batch_mark_operation_seen_by_creator",
    ],
)
def test_a_malformed_name_is_400_with_the_field_that_holds_it(stack, ops, method):
    good = make_operation(stack, ops, response=make_result())
    api = make_operations_api(stack, "users/ada")

    with pytest.raises(ApiException, match=re.escape("(400)")) as raised:
        getattr(api, method)(names=[good.name, "not-an-operation"])

    status = assert_api_error(raised, 400, code_pb2.INVALID_ARGUMENT)
    (violation,) = status["details"][0]["fieldViolations"]
    assert violation["field"] == "names[1]"
    # All or none: the good name was not marked either.
    assert not grpc_get(stack, ops, good.name).HasField("seen_by_creator_time")


def test_a_name_outside_the_path_pattern_matches_no_route(stack):
    # The path variable is operations/*: like grpc-gateway, a name that does not fit the
    # template is a routing miss, not a call with a bad argument.
    api = make_operations_api(stack, "users/ada")

    with pytest.raises(ApiException, match=re.escape("(404)")) as raised:
        api.operation_service_get_operation("not-an-operation")

    status = assert_api_error(raised, 404, code_pb2.NOT_FOUND)
    assert status["message"] == "no route for '/v1/not-an-operation'"


# --- every documented path, from the OpenAPI document -----------------------------------------


@dataclass(frozen=True)
class DocumentedCall:
    method: str
    path: str
    operation_id: str
    parameters: tuple[dict[str, Any], ...]
    response_keys: frozenset[str]  # the properties of its 200 response's schema

    def url(self, name: str) -> str:
        """The concrete URL: every path parameter is ``name`` (checked against the
        parameter's pattern), every repeated query parameter holds ``name`` once."""
        query = [
            f"{p['name']}={name}"
            for p in self.parameters
            if p["in"] == "query" and p.get("type") == "array"
        ]
        return self.path_for(name) + ("?" + "&".join(query) if query else "")

    def path_for(self, name: str) -> str:
        path = self.path
        for parameter in self.parameters:
            if parameter["in"] == "path":
                assert re.fullmatch(parameter["pattern"], name), parameter
                path = path.replace("{" + parameter["name"] + "}", name)
        assert "{" not in path, path
        return path


def documented_calls() -> list[DocumentedCall]:
    with open(SWAGGER, encoding="utf-8") as f:
        document = json.load(f)
    found = []
    for path, methods in document["paths"].items():
        for method, spec in methods.items():
            if not DOCUMENTED_TAGS & set(spec.get("tags", ())):
                continue
            schema = spec["responses"]["200"]["schema"]["$ref"].rsplit("/", 1)[1]
            properties = frozenset(document["definitions"][schema]["properties"])
            found.append(
                DocumentedCall(
                    method.upper(),
                    path,
                    spec["operationId"],
                    tuple(spec["parameters"]),
                    properties,
                )
            )
    return found


DOCUMENTED_CALLS = documented_calls()
# Fields beyond the documented API: lists are cut into pages with a next-page token.
ADDED_RESPONSE_KEYS = {
    "OperationService_ListOperations": frozenset({"nextPageToken"}),
    "OperationService_ListUnseenOperations": frozenset({"nextPageToken"}),
}
# The document names the same variable differently per method (/v1/{name_7} for GET,
# /v1/{operation.name} for PATCH): a path is what a concrete URL has in common.
SOME_NAME = "operations/some-id"
DOCUMENTED_PATHS = sorted({c.path_for(SOME_NAME) for c in DOCUMENTED_CALLS})
# The calls a service makes, with a body that lets them succeed; the creator, users/ada,
# makes every other call.
PRODUCER_CALLS = {
    "OperationService_UpdateOperation": {"metadata": make_struct_any(progress=0.5)},
    "OperationService_FinalizeOperation": {"done": True, "response": make_struct_any(ok=True)},
}


def test_the_document_has_the_ten_operation_calls():
    # Guards documented_calls: a renamed tag would otherwise leave nothing to test.
    assert len(DOCUMENTED_CALLS) == 10
    assert len(DOCUMENTED_PATHS) == 9


@pytest.mark.parametrize("documented", DOCUMENTED_CALLS, ids=lambda c: c.operation_id)
def test_every_documented_call_is_served_with_its_method(stack, ops, documented):
    created = make_operation(stack, ops)
    body = PRODUCER_CALLS.get(documented.operation_id)
    principal = "users/ada" if body is None else "services/eval"

    reply = call_as(
        stack,
        principal,
        documented.method,
        documented.url(created.name),
        body=None if body is None else json_body(body),
    )

    assert reply.status == 200, reply.text
    assert reply.headers.get_content_type() == "application/json"
    # Every field of the documented response, as a gateway's default JSON has them, and
    # the page token this server adds to the lists (issue 11: pages that fit).
    assert set(reply.json()) == documented.response_keys | ADDED_RESPONSE_KEYS.get(
        documented.operation_id, frozenset()
    )


@pytest.mark.parametrize("wrong", ["PUT", "DELETE"])
@pytest.mark.parametrize("path", DOCUMENTED_PATHS)
def test_a_documented_path_with_a_wrong_method_is_405_with_allow(stack, ops, path, wrong):
    created = make_operation(stack, ops)
    calls = [c for c in DOCUMENTED_CALLS if c.path_for(SOME_NAME) == path]

    reply = call_as(stack, "users/ada", wrong, path.replace(SOME_NAME, created.name))

    assert_status_body(reply, 405, code_pb2.UNIMPLEMENTED)
    allowed = {m.strip() for m in reply.headers["Allow"].split(",")}
    assert {c.method for c in calls} <= allowed


# --- one operation, four views ------------------------------------------------------------


@pytest.mark.parametrize("outcome", ["running", "response", "error"])
def test_grpc_rest_and_google_longrunning_agree(stack, ops, channel, outcome):
    created = make_operation(
        stack,
        ops,
        response=make_result() if outcome == "response" else None,
        error=make_error() if outcome == "error" else None,
    )
    path = f"/v1/{created.name}"

    held = grpc_get(stack, ops, created.name)
    documented = make_operations_api(stack, "users/ada").operation_service_get_operation(
        created.name
    )
    raw = call_as(stack, "users/ada", "GET", path).json()
    longrunning = operations_v1.OperationsClient(channel).get_operation(
        created.name, metadata=list(stack.auth("users/ada"))
    )

    assert_documented_agrees(documented.operation, held)
    assert_raw_agrees(raw["operation"], held)
    assert longrunning.name == held.name
    assert unpack(longrunning.metadata) == unpack(held.metadata)
    assert longrunning.done is held.done
    assert longrunning.WhichOneof("result") == held.WhichOneof("result")
    if held.HasField("response"):
        assert unpack(longrunning.response) == unpack(held.response)
    if held.HasField("error"):
        assert status_details(longrunning.error) == status_details(held.error)
        assert (longrunning.error.code, longrunning.error.message) == (
            held.error.code,
            held.error.message,
        )


def test_the_json_is_in_the_gateway_default_style(stack, ops):
    created = make_operation(stack, ops)

    raw = call_as(stack, "users/ada", "GET", f"/v1/{created.name}").json()["operation"]

    assert set(raw) == OPERATION_KEYS
    assert (raw["done"], raw["deleter"], raw["updater"]) == (False, "", "")
    assert (raw["updateTime"], raw["deleteTime"], raw["seenByCreatorTime"]) == (None, None, None)


def test_a_percent_encoded_name_reaches_the_same_operation(stack, ops):
    created = make_operation(stack, ops)
    encoded = created.name.replace("/", "%2F")

    plain = call_as(stack, "users/ada", "GET", f"/v1/{created.name}")
    quoted = call_as(stack, "users/ada", "GET", f"/v1/{encoded}")

    assert plain.status == quoted.status == 200
    assert plain.json() == quoted.json()


# --- gateway limits and errors ------------------------------------------------------------


def test_a_body_over_the_cap_is_413(stack, ops):
    created = make_operation(stack, ops)
    body = json_body({"metadata": make_struct_any(padding="x" * SMALL_BODY_BYTES)})

    reply = call(
        stack.small_port,
        "PATCH",
        f"/v1/{created.name}",
        token=stack.tokens["services/eval"],
        body=body,
    )

    status = assert_status_body(reply, 413, code_pb2.RESOURCE_EXHAUSTED)
    assert str(SMALL_BODY_BYTES) in status["message"]
    assert grpc_get(stack, ops, created.name) == created


def test_a_chunked_body_over_the_cap_is_413(stack, ops):
    # No Content-Length to refuse up front: the cap holds while the body is read.
    created = make_operation(stack, ops)
    body = json_body({"metadata": make_struct_any(padding="x" * SMALL_BODY_BYTES)})

    reply = call(
        stack.small_port,
        "PATCH",
        f"/v1/{created.name}",
        token=stack.tokens["services/eval"],
        body=body,
        chunked=True,
    )

    assert_status_body(reply, 413, code_pb2.RESOURCE_EXHAUSTED)


def test_a_body_within_the_cap_is_served(stack, ops):
    created = make_operation(stack, ops)
    body = json_body({"metadata": make_struct_any(progress=0.5)})
    assert len(body) <= SMALL_BODY_BYTES

    reply = call(
        stack.small_port,
        "PATCH",
        f"/v1/{created.name}",
        token=stack.tokens["services/eval"],
        body=body,
    )

    assert reply.status == 200, reply.text
    assert_raw_agrees(reply.json()["operation"], grpc_get(stack, ops, created.name))


def test_a_chunked_body_arrives_whole(stack, ops):
    # Sent in 100-byte chunks: a gateway that took the first read for the whole body would
    # see truncated JSON.
    created = make_operation(stack, ops)
    body = json_body({"metadata": make_struct_any(padding="x" * 200_000)})

    reply = call(
        stack.http_port,
        "PATCH",
        f"/v1/{created.name}",
        token=stack.tokens["services/eval"],
        body=body,
        chunked=True,
    )

    assert reply.status == 200, reply.text
    assert_raw_agrees(reply.json()["operation"], grpc_get(stack, ops, created.name))


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b'{"metadata": ', "application/json", "request body: $: not valid JSON"),
        (json_body({"done": "yes"}), "application/json", "invalid request"),
        (json_body({"bogus": 1}), "application/json", "invalid request"),
        (json_body({"metadata": {}}), "text/plain", "request body must be application/json"),
        (json_body({"metadata": {}}), None, "request body must be application/json"),
    ],
    ids=["malformed-json", "bool-as-string", "unknown-key", "text", "none"],
)
def test_a_bad_body_is_400(stack, ops, body, content_type, message):
    created = make_operation(stack, ops)

    reply = call_as(
        stack, "services/eval", "PATCH", f"/v1/{created.name}", body=body, content_type=content_type
    )

    status = assert_status_body(reply, 400, code_pb2.INVALID_ARGUMENT)
    assert status["message"].startswith(message), status["message"]
    assert grpc_get(stack, ops, created.name) == created


@pytest.mark.parametrize("body", [b"[]", b'"metadata"', b"5", b"true"])
@pytest.mark.parametrize("verb", ["", ":finalize"])
def test_a_body_that_is_not_an_object_is_400_and_changes_nothing(stack, ops, body, verb):
    # The body fills the message field `operation`: only a JSON object can, and a body
    # that cannot must not turn into an empty Operation that clears the metadata.
    created = make_operation(stack, ops)

    reply = call_as(stack, "services/eval", "PATCH", f"/v1/{created.name}{verb}", body=body)

    assert_status_body(reply, 400, code_pb2.INVALID_ARGUMENT)
    assert grpc_get(stack, ops, created.name) == created


def test_a_json_content_type_with_parameters_is_accepted(stack, ops):
    created = make_operation(stack, ops)
    body = json_body({"metadata": make_struct_any(progress=0.5)})

    reply = call_as(
        stack,
        "services/eval",
        "PATCH",
        f"/v1/{created.name}",
        body=body,
        content_type="application/json; charset=utf-8",
    )

    assert reply.status == 200, reply.text


def test_the_path_says_which_operation_whatever_body_and_query_say(stack, ops):
    # The name in the path is what the caller was authorised for and what the URL shows:
    # a different name in the body or the query must not redirect the call.
    created, other = make_operation(stack, ops), make_operation(stack, ops)
    body = json_body({"name": other.name, "metadata": make_struct_any(progress=0.5)})

    patched = call_as(stack, "services/eval", "PATCH", f"/v1/{created.name}", body=body)
    got = call_as(stack, "users/ada", "GET", f"/v1/{created.name}?name={other.name}")

    assert patched.json()["operation"]["name"] == created.name
    assert got.json()["operation"]["name"] == created.name
    assert grpc_get(stack, ops, other.name) == other


def test_a_body_on_a_route_without_one_is_400(stack, ops):
    created = make_operation(stack, ops)

    reply = call_as(
        stack, "users/ada", "POST", f"/v1/{created.name}:abort", body=json_body({"done": True})
    )

    status = assert_status_body(reply, 400, code_pb2.INVALID_ARGUMENT)
    assert status["message"] == "POST /v1/{name=operations/*}:abort takes no request body"
    assert not grpc_get(stack, ops, created.name).done


@pytest.mark.parametrize("path", ["/v1/nothing", "/v2/operations", "/v1/operations/a/b", "/"])
def test_an_unknown_path_is_404(stack, path):
    reply = call_as(stack, "users/ada", "GET", path)

    status = assert_status_body(reply, 404, code_pb2.NOT_FOUND)
    assert status["message"].startswith("no route for ")


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("bogus=1", "query parameter 'bogus' names no field"),
        ("pageSize=1&pageSize=2", "query parameter 'pageSize' is given twice"),
        ("pageSize=many", "invalid request: $.pageSize: expected an int32"),
        ("pageSize=2147483648", "invalid request: $.pageSize"),
        ("pageSize=1.5", "invalid request: $.pageSize"),
        ("view=OPERATION_VIEW_NONE", "invalid request: $.view: unknown name"),
    ],
    ids=["unknown", "repeated", "int32-word", "int32-overflow", "int32-fraction", "enum-name"],
)
def test_a_bad_query_is_400(stack, query, message):
    reply = call_as(stack, "users/ada", "GET", f"/v1/operations:unseen?{query}")

    status = assert_status_body(reply, 400, code_pb2.INVALID_ARGUMENT)
    assert status["message"].startswith(message), status["message"]


@pytest.mark.parametrize(
    ("view", "has_response"),
    [
        ("OPERATION_VIEW_BASIC", False),
        ("1", False),
        ("OPERATION_VIEW_FULL", True),
        ("2", True),
        ("0", True),
    ],
)
def test_the_view_enum_is_read_by_name_and_by_number(stack, ops, view, has_response):
    user = stack.fresh_user()
    make_operation(stack, ops, user, response=make_result())

    reply = call_as(stack, user, "GET", f"/v1/operations:unseen?view={view}")

    assert reply.status == 200, reply.text
    (operation,) = reply.json()["operations"]
    assert ("response" in operation) is has_response


# The one bool request field the gateway serves; googleapis-common-protos has it only in its
# latest 1.75 releases (which need protobuf 6.33.5), so the lowest environment lacks it.
@pytest.mark.skipif(
    "return_partial_success"
    not in operations_proto_pb2.ListOperationsRequest.DESCRIPTOR.fields_by_name,
    reason="google.longrunning.ListOperationsRequest.return_partial_success is missing",
)
@pytest.mark.parametrize(
    ("value", "status"), [("true", 200), ("false", 200), ("yes", 400), ("1", 400), ("", 400)]
)
def test_a_bool_query_is_true_or_false(stack, value, status):
    # Only google.longrunning's ListOperationsRequest has a bool a query can reach.
    reply = call(
        stack.lro_port,
        "GET",
        f"/v1/operations?returnPartialSuccess={value}",
        token=stack.tokens["users/ada"],
    )

    assert reply.status == status, reply.text
    if status == 400:
        body = assert_status_body(reply, 400, code_pb2.INVALID_ARGUMENT)
        assert body["message"] == "returnPartialSuccess: expected true or false"


def test_grpc_errors_keep_their_typed_details(stack):
    reply = call_as(stack, "users/ada", "GET", "/v1/operations?pageSize=-1")

    status = assert_status_body(reply, 400, code_pb2.INVALID_ARGUMENT)
    (detail,) = status["details"]
    assert detail["@type"] == "type.googleapis.com/google.rpc.BadRequest"
    assert [(v["field"], v["description"]) for v in detail["fieldViolations"]] == [
        ("page_size", "must be >= 0")
    ]


def test_a_failed_precondition_keeps_its_details(stack, ops):
    created = make_operation(stack, ops, response=make_result())

    reply = call_as(stack, "users/ada", "POST", f"/v1/{created.name}:abort")

    status = assert_status_body(reply, 400, code_pb2.FAILED_PRECONDITION)
    (detail,) = status["details"]
    assert detail["@type"] == "type.googleapis.com/google.rpc.PreconditionFailure"
    assert detail["violations"][0]["subject"] == created.name


def test_an_unreachable_grpc_target_is_503(stack):
    reply = call(stack.dead_port, "GET", f"/v1/{MISSING_NAME}", token=stack.tokens["users/ada"])

    assert_status_body(reply, 503, code_pb2.UNAVAILABLE)


# --- the v1op commands --------------------------------------------------------------------


@dataclass
class Process:
    process: subprocess.Popen[str]
    lines: queue.Queue[str]
    stderr_path: Path

    def line(self) -> str:
        try:
            return self.lines.get(timeout=READY_TIMEOUT * 2)
        except queue.Empty:
            stderr = self.stderr_path.read_text(encoding="utf-8")
            raise AssertionError(f"no ready line from the command; stderr: {stderr}") from None

    def port(self, pattern: str) -> int:
        line = self.line()
        match = re.fullmatch(pattern, line.rstrip("\n"))
        assert match is not None, line
        return int(match.group(1))

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)


def make_tokens_file(directory: Path, tokens: dict[str, str]) -> Path:
    path = directory / "tokens.txt"
    path.write_text("".join(f"{t} {who}\n" for who, t in tokens.items()), encoding="utf-8")
    return path


@pytest.fixture
def run_command(tmp_path) -> Iterator:
    started: list[subprocess.Popen[str]] = []

    def run(*args: str) -> Process:
        stderr_path = tmp_path / f"{args[0]}-{time.monotonic_ns()}.err"
        with open(stderr_path, "w", encoding="utf-8") as stderr:
            process = subprocess.Popen(
                [str(SCRIPT), *args], stdout=subprocess.PIPE, stderr=stderr, text=True
            )
        started.append(process)
        lines: queue.Queue[str] = queue.Queue()

        # readline blocks; a reader thread gives the wait for each ready line a deadline.
        def read() -> None:
            for line in process.stdout:
                lines.put(line)

        threading.Thread(target=read, daemon=True).start()
        return Process(process, lines, stderr_path)

    yield run
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def serve_command(run_command, tmp_path: Path, tokens: dict[str, str], *extra: str) -> Process:
    tokens_file = make_tokens_file(tmp_path, tokens)
    return run_command(
        "serve",
        "--grpc-addr",
        "127.0.0.1:0",
        "--db",
        ":memory:",
        "--tokens",
        str(tokens_file),
        *EXAMPLE_TYPES,
        *extra,
    )


def create_over_grpc(target: str, tokens: dict[str, str]) -> Operation:
    with grpc.insecure_channel(target) as channel:
        request = pb.CreateOperationRequest(
            operation=Operation(metadata=pack(make_progress())), on_behalf_of="users/ada"
        )
        return (
            pb_grpc.OperationServiceStub(channel)
            .CreateOperation(
                request,
                metadata=(("authorization", f"Bearer {tokens['services/eval']}"),),
                timeout=10,
            )
            .operation
        )


COMMAND_TOKENS = {"services/eval": "tok-eval", "users/ada": "tok-ada", "users/bob": "tok-bob"}


def test_serve_with_http_addr_serves_both_and_exits_0_on_sigterm(run_command, tmp_path):
    server = serve_command(run_command, tmp_path, COMMAND_TOKENS, "--http-addr", "127.0.0.1:0")
    grpc_port = server.port(r"v1op: serving gRPC on 127\.0\.0\.1:(\d+)")
    http_port = server.port(r"v1op: serving HTTP on 127\.0\.0\.1:(\d+)")

    created = create_over_grpc(f"127.0.0.1:{grpc_port}", COMMAND_TOKENS)
    reply = call(http_port, "GET", f"/v1/{created.name}", token=COMMAND_TOKENS["users/ada"])

    assert reply.status == 200, reply.text
    assert_raw_agrees(reply.json()["operation"], created)
    assert server.terminate() == 0


def test_gateway_command_in_front_of_serve_exits_0_on_sigterm(run_command, tmp_path):
    server = serve_command(run_command, tmp_path, COMMAND_TOKENS)
    grpc_port = server.port(r"v1op: serving gRPC on 127\.0\.0\.1:(\d+)")
    target = f"127.0.0.1:{grpc_port}"
    gateway = run_command(
        "gateway", "--http-addr", "127.0.0.1:0", "--grpc-target", target, *EXAMPLE_TYPES
    )
    http_port = gateway.port(rf"v1op: serving HTTP on 127\.0\.0\.1:(\d+) for gRPC {target}")

    created = create_over_grpc(target, COMMAND_TOKENS)
    client = ApiClient(Configuration(host=f"http://127.0.0.1:{http_port}"))
    client.set_default_header("Authorization", f"Bearer {COMMAND_TOKENS['users/ada']}")
    got = OperationServiceApi(client).operation_service_get_operation(created.name)
    denied = call(http_port, "GET", f"/v1/{created.name}", token=COMMAND_TOKENS["users/bob"])

    assert_documented_agrees(got.operation, created)
    assert_status_body(denied, 403, code_pb2.PERMISSION_DENIED)
    assert gateway.terminate() == 0
    assert server.terminate() == 0


# --- query parameters beside a body field ---------------------------------------------------


def make_body_field_service():
    """PATCH /v1/things with body "thing", and a field whose JSON name differs from its name,
    in a pool of its own: the documented routes have no field beside their body field."""
    pool = descriptor_pool.DescriptorPool()
    for dependency in (descriptor_pb2, http_pb2, annotations_pb2):
        proto = descriptor_pb2.FileDescriptorProto()
        dependency.DESCRIPTOR.CopyToProto(proto)
        pool.Add(proto)
    file = descriptor_pb2.FileDescriptorProto(
        name="gatewaytest.proto",
        package="gatewaytest",
        syntax="proto3",
        dependency=["google/api/annotations.proto"],
    )
    request = file.message_type.add(name="Req")
    request.field.add(name="the_name", number=1, type=9, label=1, json_name="theName")
    request.field.add(
        name="thing", number=2, type=11, label=1, type_name=".gatewaytest.Req", json_name="thing"
    )
    file.message_type.add(name="Res")
    method = file.service.add(name="Svc").method.add(
        name="Do", input_type=".gatewaytest.Req", output_type=".gatewaytest.Res"
    )
    method.options.Extensions[annotations_pb2.http].CopyFrom(
        http_pb2.HttpRule(patch="/v1/things", body="thing")
    )
    pool.Add(file)
    return pool.FindServiceByName("gatewaytest.Svc")


def query_statuses(queries: list[str]) -> list[tuple[int, dict[str, Any]]]:
    """PATCH /v1/things?<query> against a standalone gateway whose gRPC target is a closed
    port: a request the gateway accepts ends 503 (UNAVAILABLE), one it refuses ends 400."""

    async def run() -> list[tuple[int, dict[str, Any]]]:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{closed_port()}")
        service = make_body_field_service()
        dispatcher = ChannelDispatcher(channel, [service], TypeRegistry())
        app = create_http_app(dispatcher, rest_services=[service])
        async with TestClient(TestServer(app)) as client:
            replies = []
            for query in queries:
                reply = await client.patch(f"/v1/things?{query}", json={})
                replies.append((reply.status, await reply.json()))
        await channel.close()
        return replies

    return asyncio.run(run())


def test_query_parameters_may_not_set_the_body_field_by_either_name():
    for status, body in query_statuses(["thing.theName=x", "thing.the_name=x"]):
        assert status == 400
        assert "names a field of the request body" in body["message"]


def test_query_parameters_beside_the_body_field_are_taken_by_either_name():
    # Both spellings of the_name are fields outside the body: the gateway sends the call on.
    for status, body in query_statuses(["theName=x", "the_name=x"]):
        assert status == 503, body
        assert body["code"] == code_pb2.UNAVAILABLE


# --- the standalone gateway's Connect and gRPC-Web ----------------------------------------------


@pytest.mark.parametrize("port", ["http_port", "remote_port"])
def test_connect_through_either_dispatcher_agrees_with_grpc(stack, ops, port):
    created = make_operation(stack, ops)
    headers = {
        "Content-Type": "application/json",
        "Connect-Protocol-Version": "1",
        "Authorization": f"Bearer {stack.tokens['users/ada']}",
    }
    connection = http.client.HTTPConnection("127.0.0.1", getattr(stack, port), timeout=10)
    try:
        for name, status in [(created.name, 200), (MISSING_NAME, 404)]:
            body = json.dumps({"name": name}).encode()
            connection.request("POST", "/v1op.v1.OperationService/GetOperation", body, headers)
            response = connection.getresponse()
            answer = json.loads(response.read())
            assert response.status == status, answer
            if status == 200:
                assert from_dict(answer["operation"]) == grpc_get(stack, ops, created.name)
            else:
                # The remote server's Status comes back whole: code, message, typed details.
                assert answer["code"] == "not_found"
                assert answer["details"][0]["type"] == "google.rpc.ResourceInfo"
    finally:
        connection.close()


def test_grpc_web_through_the_standalone_gateway(stack, ops):
    created = make_operation(stack, ops)
    request = pb.GetOperationRequest(name=created.name).SerializeToString()
    body = struct.pack(">BI", 0, len(request)) + request
    headers = {
        "Content-Type": "application/grpc-web+proto",
        "Authorization": f"Bearer {stack.tokens['users/ada']}",
    }
    connection = http.client.HTTPConnection("127.0.0.1", stack.remote_port, timeout=10)
    try:
        connection.request("POST", "/v1op.v1.OperationService/GetOperation", body, headers)
        response = connection.getresponse()
        payload = response.read()
    finally:
        connection.close()

    assert response.status == 200
    length = struct.unpack(">I", payload[1:5])[0]
    message, trailers = payload[5 : 5 + length], payload[5 + length :]
    assert pb.GetOperationResponse.FromString(message).operation == created
    assert trailers[0] == 0x80 and trailers[5:].startswith(b"grpc-status:0\r\n")


def test_the_standalone_gateway_is_ready_when_its_grpc_server_is(stack):
    ready = call(stack.remote_port, "GET", "/readyz")
    unreachable = call(stack.dead_port, "GET", "/readyz")
    alive = call(stack.dead_port, "GET", "/healthz")

    assert (ready.status, ready.json()) == (200, {"status": "SERVING"})
    assert_status_body(unreachable, 503, code_pb2.UNAVAILABLE)
    assert alive.status == 200
