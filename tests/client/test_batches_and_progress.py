"""The client methods beside get and list: batch_get, batch_mark_seen, progress and delete,
sync and async, against the module's server."""

from __future__ import annotations

import asyncio

import pytest
from conftest import make_progress, make_result
from google.api_core.exceptions import NotFound

from v1op_pb.client import AsyncOperationClient, OperationClient


def test_batch_get_and_batch_mark_seen_keep_the_order_given(served, make_operation):
    user = served.fresh_user()
    running = make_operation(user)
    finished = [make_operation(user, response=make_result(f"e{i}")) for i in range(2)]
    names = [finished[1].name, running.name, finished[0].name]
    with OperationClient(served.target, token=served.tokens[user]) as client:
        assert [op.name for op in client.batch_get(names)] == names
        marked = client.batch_mark_seen([op.name for op in finished])
        assert [op.name for op in marked] == [op.name for op in finished]
        assert all(op.HasField("seen_by_creator_time") for op in marked)
        assert list(client.list_unseen()) == []


def test_progress_is_what_the_server_reads_from_the_metadata(served, make_operation):
    created = make_operation(metadata=make_progress(0.4, "scoring"))
    with OperationClient(served.target, token=served.tokens["users/ada"]) as client:
        progress = client.progress(created.name)
    assert (progress.parent, progress.message) == (created.name, "scoring")
    assert progress.progress == pytest.approx(0.4)
    assert progress.name.startswith(f"{created.name}/progresses/")


def test_delete_makes_it_not_found(served, make_operation):
    created = make_operation()
    with OperationClient(served.target, token=served.tokens["users/ada"]) as client:
        assert client.delete(created.name) is None
        with pytest.raises(NotFound):
            client.get(created.name)


def test_the_async_client_has_them_too(served, make_operation):
    user = served.fresh_user()
    done = make_operation(user, response=make_result())
    doomed = make_operation(user, metadata=make_progress(0.5, "half"))

    async def main() -> tuple[list[str], list[str], float]:
        async with AsyncOperationClient(served.target, token=served.tokens[user]) as client:
            got = [op.name for op in await client.batch_get([doomed.name, done.name])]
            seen = [op.name for op in await client.batch_mark_seen([done.name])]
            progress = await client.progress(doomed.name)
            await client.delete(doomed.name)
            with pytest.raises(NotFound):
                await client.get(doomed.name)
            return got, seen, progress.progress

    got, seen, fraction = asyncio.run(main())
    assert got == [doomed.name, done.name]
    assert seen == [done.name]
    assert fraction == pytest.approx(0.5)
