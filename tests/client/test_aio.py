"""AsyncOperationClient (grpc.aio) against the reference server: the methods of the
synchronous client, awaited, and the async run context manager."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest
from conftest import make_progress, make_result
from google.api_core.exceptions import Cancelled, DeadlineExceeded, NotFound, PermissionDenied
from google.rpc import code_pb2, error_details_pb2

from v1op_pb import Operation, pack
from v1op_pb.client import AsyncOperationClient

EVAL, ADA, BOB = "services/eval", "users/ada", "users/bob"
UNKNOWN_NAME = "operations/00000000-0000-4000-8000-000000000000"
T = TypeVar("T")


def run_with_clients(
    served, body: Callable[[AsyncOperationClient, AsyncOperationClient], Awaitable[T]]
) -> T:
    """Run ``body(service, ada)`` on a fresh event loop, with clients for services/eval and
    users/ada (grpc.aio channels belong to the loop that made them)."""

    async def main() -> T:
        async with (
            AsyncOperationClient(served.target, token=served.tokens[EVAL]) as service,
            AsyncOperationClient(served.target, token=served.tokens[ADA]) as ada,
        ):
            return await body(service, ada)

    return asyncio.run(main())


def test_produce_and_read(served):
    async def body(service, ada):
        created = await service.create(make_progress(0.0), on_behalf_of=ADA)
        await service.update(created.name, make_progress(0.5, "half"))
        assert (await ada.get(created.name)).metadata == pack(make_progress(0.5, "half"))
        assert created.name in [op.name for op in (await ada.list()).operations]
        waiter = asyncio.ensure_future(ada.result(created.name, timeout=20))
        await service.finalize(created.name, response=make_result("e-aio"))
        return await waiter

    assert run_with_clients(served, body) == make_result("e-aio")


def test_errors_are_api_core_exceptions_with_typed_details(served):
    async def body(service, ada):
        with pytest.raises(NotFound) as info:
            await ada.get(UNKNOWN_NAME)
        (resource,) = info.value.details
        assert isinstance(resource, error_details_pb2.ResourceInfo)
        created = await service.create(on_behalf_of=ADA)
        async with AsyncOperationClient(served.target, token=served.tokens[BOB]) as bob:
            with pytest.raises(PermissionDenied):
                await bob.get(created.name)
        await ada.abort(created.name)
        with pytest.raises(Cancelled):
            await ada.result(created.name, timeout=5)

    run_with_clients(served, body)


def test_wait_times_out_on_a_running_operation(served):
    async def body(service, ada):
        created = await service.create(on_behalf_of=ADA)
        waited = await ada.wait(created.name, timeout=0.2)
        assert isinstance(waited, Operation) and not waited.done
        with pytest.raises(DeadlineExceeded):
            await ada.result(created.name, timeout=0.1)

    run_with_clients(served, body)


def test_async_run_finalizes_with_the_error_of_its_block(served):
    async def body(service, ada):
        with pytest.raises(TimeoutError):
            async with service.run(make_progress(), on_behalf_of=ADA) as run:
                await run.report(make_progress(0.3))
                raise TimeoutError("the model did not answer")
        return await ada.get(run.name)

    failed = run_with_clients(served, body)
    assert (failed.error.code, failed.error.message) == (
        code_pb2.DEADLINE_EXCEEDED,
        "TimeoutError: the model did not answer",
    )


def test_async_run_succeeds(served):
    async def body(service, ada):
        async with service.run(make_progress(), on_behalf_of=ADA, progress_interval=0) as run:
            await run.report(make_progress(0.9))
            await run.succeed(make_result("e-async-run"))
        return await ada.result(run.name, timeout=5)

    assert run_with_clients(served, body) == make_result("e-async-run")
