"""Choosing the engine from what ``--db`` says."""

from __future__ import annotations

from .base import Store, StoreUnavailable
from .sqlite import SQLiteStore

__all__ = ["open_store"]


def open_store(db: str) -> Store:
    """A PostgreSQL store for a libpq URL (``postgresql://`` or ``postgres://``), else a
    SQLite store on the file ``db`` (or ``:memory:``). StoreUnavailable, with the reason,
    when the database cannot be opened or is of a newer schema."""
    if db.startswith(("postgresql://", "postgres://")):
        try:
            from .postgres import PostgresStore
        except ImportError as e:
            raise StoreUnavailable(
                f"a PostgreSQL --db needs psycopg: pip install 'v1op-pb[postgres]' ({e})"
            ) from e
        return PostgresStore(db)
    return SQLiteStore(db)
