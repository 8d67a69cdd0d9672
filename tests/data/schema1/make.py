"""Makes the schema-1 databases that tests/server/store/test_schema.py migrates: run with the
schema-1 code (the commit before the store's schema 2, dc29669), from the repository root:

    git worktree add /tmp/v1 dc29669 && cd /tmp/v1 && make install && \
        .venv/bin/python tests/data/schema1/make.py OUT_DIR POSTGRES_URL

(the script itself is not in that commit: copy it there). It writes ``operations.db``, a
SQLite file, and ``postgres.sql``, ``pg_dump --inserts`` of a PostgreSQL database, both filled
through that version's own Store with the operations ``operations()`` returns.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path

from google.protobuf import timestamp_pb2
from google.rpc import code_pb2

from v1op_pb import Operation, make_status
from v1op_pb.server.store import open_store


def stamp(seconds: int, nanos: int = 0) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)


def operations() -> list[Operation]:
    """One operation of every state: running, succeeded, failed, aborted, a succeeded one
    seen by its creator, a failed one deleted, and a running one deleted."""
    base = 1_795_000_000
    made = []
    for i, (state, seen, deleted) in enumerate(
        [
            ("running", False, False),
            ("succeeded", False, False),
            ("failed", False, False),
            ("aborted", False, False),
            ("succeeded", True, False),
            ("failed", False, True),
            ("running", False, True),
        ]
    ):
        op = Operation(
            name=f"operations/schema1-{i}",
            creator="users/ada" if i % 2 == 0 else "users/bob",
            create_time=stamp(base + i * 100, 123_456_789),
            update_time=stamp(base + i * 100 + 50, 987_654_321),
            updater="services/eval",
        )
        if state != "running":
            op.done = True
        if state == "succeeded":
            op.response.Pack(stamp(base))
        elif state == "failed":
            op.error.CopyFrom(make_status(code_pb2.RESOURCE_EXHAUSTED, "quota"))
        elif state == "aborted":
            op.error.CopyFrom(make_status(code_pb2.CANCELLED, "aborted by users/ada"))
        if seen:
            op.seen_by_creator_time.CopyFrom(stamp(base + i * 100 + 70))
        if deleted:
            op.delete_time.CopyFrom(stamp(base + i * 100 + 90, 5))
            op.deleter = "services/eval"
        made.append(op)
    return made


async def fill(db: str) -> None:
    store = open_store(db)
    try:
        for op in operations():
            await store.insert(op)
    finally:
        await store.aclose()


def main() -> None:
    out, url = Path(sys.argv[1]), sys.argv[2]
    out.mkdir(parents=True, exist_ok=True)
    sqlite_file = out / "operations.db"
    sqlite_file.unlink(missing_ok=True)
    asyncio.run(fill(str(sqlite_file)))
    # One file, no write-ahead log beside it.
    with sqlite3.connect(sqlite_file) as db:
        db.execute("PRAGMA journal_mode=DELETE")
    asyncio.run(fill(url))
    dump = subprocess.run(
        ["pg_dump", "--inserts", "--no-owner", "--no-privileges", "--table=v1op_*", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (out / "postgres.sql").write_text(dump, encoding="utf-8")


if __name__ == "__main__":
    main()
