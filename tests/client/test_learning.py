"""Both clients learn payload types from the server's reflection, as grpcurl and the CLI do:
against a real server given a type (regtest.v1.Widget, from a descriptor set) that no
generated module of this process defines. Learning can be turned off, and a negative cache
bounds the round trips for types the server does not know either."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc_tools
import pytest
from conftest import ServerThread, make_result, make_token_table, running
from google.api_core.exceptions import FailedPrecondition
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2
from grpc_tools import protoc
from v1op.example.v1 import evaluation_pb2

from v1op_pb import ConversionError, Operation, TypeRegistry, make_status
from v1op_pb.client import AsyncOperationClient, OperationClient
from v1op_pb.client.reflection import TypeLearner
from v1op_pb.server.store import SQLiteStore

PROTO_ROOT = Path(__file__).resolve().parents[1] / "data"
WKT_INCLUDE = Path(grpc_tools.__file__).parent / "_proto"
WIDGET = "regtest.v1.Widget"
SECRET_URL = "type.googleapis.com/acme.v9.Secret"


@dataclass
class WidgetServer:
    target: str
    tokens: dict[str, str]
    store: SQLiteStore
    widget: type[Message]  # the server's class for Widget (from its own registry)
    thread: ServerThread


@pytest.fixture(scope="module")
def widget_server(tmp_path_factory) -> Iterator[WidgetServer]:
    from v1op_pb.server.app import create_server

    folder = tmp_path_factory.mktemp("learning")
    widget_set = folder / "widget.pb"
    args = ["protoc", f"-I{PROTO_ROOT}", f"-I{WKT_INCLUDE}", f"--descriptor_set_out={widget_set}"]
    assert protoc.main([*args, "regtest/v1/widget.proto"]) == 0
    registry = TypeRegistry()
    registry.add_descriptor_set(widget_set)
    table, tokens = make_token_table()
    store = SQLiteStore(str(folder / "ops.db"))
    with running(
        lambda: create_server("127.0.0.1:0", store=store, tokens=table, registry=registry)
    ) as thread:
        yield WidgetServer(
            f"127.0.0.1:{thread.port}", tokens, store, registry.resolve(WIDGET), thread
        )
    store.close()


def client_for(server: WidgetServer, who: str = "users/ada", **kwargs) -> OperationClient:
    return OperationClient(server.target, token=server.tokens[who], **kwargs)


def widget_operation(server: WidgetServer) -> Operation:
    """A finished operation of users/ada whose response is a Widget."""
    with client_for(server, "services/eval") as service:
        created = service.create(on_behalf_of="users/ada")
        widget = server.widget(name="w-1", color=1)
        return service.finalize(created.name, response=widget)


def stored(server: WidgetServer, operation: Operation) -> Operation:
    """Written to the store directly: the server refuses payloads it cannot read itself."""

    async def insert() -> None:  # the store's calls are made on its server's event loop
        await server.store.insert(operation)

    server.thread.call(insert())
    return operation


def test_result_learns_the_response_type_once(widget_server):
    done = widget_operation(widget_server)
    with client_for(widget_server) as client:
        assert WIDGET not in client.registry
        result = client.result(done.name)
        assert result.DESCRIPTOR.full_name == WIDGET
        assert (result.name, result.color) == ("w-1", 1)
        assert client.learner is not None and client.learner.lookups == 1
        # Known from then on: no second round trip.
        assert client.result(done.name) == result
        assert client.learner.lookups == 1


def test_learning_can_be_turned_off(widget_server):
    done = widget_operation(widget_server)
    with client_for(widget_server, learn_types=False) as client:
        assert client.learner is None
        with pytest.raises(ConversionError, match=r"'regtest\.v1\.Widget'"):
            client.result(done.name)


def test_a_type_the_server_does_not_know_either_is_asked_about_once(widget_server):
    operation = Operation(name="operations/secret-1", creator="users/ada", done=True)
    operation.response.CopyFrom(any_pb2.Any(type_url=SECRET_URL, value=b"\x08\x2a"))
    stored(widget_server, operation)
    with client_for(widget_server) as client:
        for _ in range(3):
            with pytest.raises(ConversionError, match=r"'acme\.v9\.Secret'"):
                client.result(operation.name)
        assert client.learner is not None and client.learner.lookups == 1


def test_error_details_of_a_learned_type_are_typed(widget_server):
    with client_for(widget_server, "services/eval") as service:
        created = service.create(on_behalf_of="users/ada")
        detail = widget_server.widget(name="blame-me")
        status = make_status(code_pb2.FAILED_PRECONDITION, "not now", [detail])
        service.finalize(created.name, error=status)
    with client_for(widget_server) as client, pytest.raises(FailedPrecondition) as raised:
        client.result(created.name)
    (typed,) = raised.value.details
    assert typed.DESCRIPTOR.full_name == WIDGET and typed.name == "blame-me"


def test_result_with_a_message_type(widget_server, served, make_operation):
    done = make_operation(response=make_result("e-typed"))
    with OperationClient(served.target, token=served.tokens["users/ada"]) as client:
        result = client.result(done.name, message_type=evaluation_pb2.EvaluationResult)
        assert isinstance(result, evaluation_pb2.EvaluationResult)
        assert result.evaluation == "e-typed"
        with pytest.raises(ConversionError, match="expected an Any holding"):
            client.result(done.name, message_type=evaluation_pb2.EvaluationProgress)


def test_the_async_client_learns_too(widget_server):
    done = widget_operation(widget_server)

    async def main() -> tuple[Message, int]:
        token = widget_server.tokens["users/ada"]
        async with AsyncOperationClient(widget_server.target, token=token) as client:
            result = await client.result(done.name)
            await client.result(done.name)
            assert client.learner is not None
            return result, client.learner.lookups

    result, lookups = asyncio.run(main())
    assert result.DESCRIPTOR.full_name == WIDGET and result.name == "w-1"
    assert lookups == 1


def test_the_async_client_can_be_told_not_to(widget_server):
    done = widget_operation(widget_server)

    async def main() -> None:
        token = widget_server.tokens["users/ada"]
        async with AsyncOperationClient(
            widget_server.target, token=token, learn_types=False
        ) as client:
            await client.result(done.name)

    with pytest.raises(ConversionError, match=r"'regtest\.v1\.Widget'"):
        asyncio.run(main())


# --- the negative cache itself -------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_an_unknown_name_is_asked_again_after_its_time_to_live():
    clock = Clock()
    learner = TypeLearner(TypeRegistry(), unknown_ttl=60, clock=clock)
    assert learner.should_ask("a.B")
    assert learner.answered("a.B", learned=False) is False
    assert not learner.should_ask("a.B")
    clock.now = 59.9
    assert not learner.should_ask("a.B")
    clock.now = 60
    assert learner.should_ask("a.B")


def test_the_negative_cache_keeps_at_most_max_unknown_names():
    learner = TypeLearner(TypeRegistry(), max_unknown=3, clock=Clock())
    for name in ("a.A", "a.B", "a.C", "a.D"):
        learner.answered(name, learned=False)
    # The oldest went first; a learned type is not remembered as unknown.
    assert [learner.should_ask(n) for n in ("a.A", "a.B", "a.C", "a.D")] == [
        True,
        False,
        False,
        False,
    ]
    learner.answered("a.E", learned=True)
    assert learner.should_ask("a.E")
    assert learner.lookups == 5
