"""The PostgreSQL engine's tables: made at a server's first start, and schema 1's table
brought to schema 2 in the same start-up transaction (the advisory lock keeps two starting
replicas from doing it at once)."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from ..._operation import Operation
from .base import SCHEMA_VERSION, SchemaTooNew, indexed_columns

__all__ = ["create_schema", "fill_new_columns"]

# Any fixed number, apart from the store's own (postgres.py): start-ups take this
# transaction-scoped lock so that two of them never create the tables at once.
_SCHEMA_LOCK = 0x7631_6F70

_SCHEMA = """
CREATE TABLE v1op_schema (version integer NOT NULL);
CREATE TABLE v1op_operations (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL UNIQUE,
    creator text NOT NULL,
    done boolean NOT NULL,
    seen boolean NOT NULL,
    deleted boolean NOT NULL,
    data bytea NOT NULL
)
"""
# Schema 2's columns, as schema 1's table gains them (a new table too: see create_schema).
_NEW_COLUMNS = """
ALTER TABLE v1op_operations
    ADD COLUMN create_ns bigint NOT NULL DEFAULT 0,
    ADD COLUMN finish_ns bigint,
    ADD COLUMN delete_ns bigint,
    ADD COLUMN state text NOT NULL DEFAULT 'running'
        CHECK (state IN ('running', 'succeeded', 'failed', 'aborted'))
"""
_INDEXES = """
CREATE INDEX IF NOT EXISTS v1op_operations_by_creator
    ON v1op_operations (creator, deleted, done, seen, seq);
CREATE INDEX IF NOT EXISTS v1op_operations_by_creator_state
    ON v1op_operations (creator, deleted, state, seq);
CREATE INDEX IF NOT EXISTS v1op_operations_by_state ON v1op_operations (deleted, state, seq);
CREATE INDEX IF NOT EXISTS v1op_operations_by_finish
    ON v1op_operations (finish_ns) WHERE finish_ns IS NOT NULL;
CREATE INDEX IF NOT EXISTS v1op_operations_by_delete
    ON v1op_operations (delete_ns) WHERE delete_ns IS NOT NULL
"""


def create_schema(conn: psycopg.Connection[Any], where: str) -> None:
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
        exists = conn.execute("SELECT to_regclass('v1op_schema') IS NOT NULL").fetchone()
        version = 0
        if exists and exists[0]:
            row = conn.execute("SELECT max(version) FROM v1op_schema").fetchone()
            version = row[0] if row and row[0] is not None else 0
            if version > SCHEMA_VERSION:
                raise SchemaTooNew(
                    f"PostgreSQL database {where} has schema version {version}; this server "
                    f"knows up to {SCHEMA_VERSION}: run a newer v1op"
                )
            if version == SCHEMA_VERSION:
                return
        if version == 0:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(sql.SQL(statement.strip()))
        conn.execute(sql.SQL(_NEW_COLUMNS.strip()))
        if version > 0:
            fill_new_columns(conn)
        for statement in _INDEXES.split(";"):
            if statement.strip():
                conn.execute(sql.SQL(statement.strip()))
        conn.execute("INSERT INTO v1op_schema (version) VALUES (%s)", (SCHEMA_VERSION,))


def fill_new_columns(conn: psycopg.Connection[Any]) -> None:
    """Schema 1 to 2, in the start-up transaction: schema 2's columns filled in from each
    stored operation."""
    rows = conn.execute("SELECT seq, data FROM v1op_operations", binary=True).fetchall()
    with conn.cursor() as cursor:
        cursor.executemany(
            "UPDATE v1op_operations SET create_ns = %s, finish_ns = %s, delete_ns = %s, "
            "state = %s WHERE seq = %s",
            [(*indexed_columns(Operation.FromString(data))[4:], seq) for seq, data in rows],
        )
