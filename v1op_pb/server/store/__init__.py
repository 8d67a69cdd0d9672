"""Where the reference server keeps Operations: the Store interface (``base``), group commit
(``writes``, which both engines share) and one module per engine (``sqlite``, and
``postgres`` with the ``postgres`` extra)."""

from .base import (
    SCHEMA_VERSION,
    STATES,
    Change,
    OnChange,
    Page,
    Query,
    SchemaTooNew,
    Store,
    StoredOperationExists,
    StoredOperationMissing,
    StoreUnavailable,
    state_of,
)
from .opening import open_store
from .sqlite import SQLiteStore

__all__ = [
    "SCHEMA_VERSION",
    "STATES",
    "Change",
    "OnChange",
    "Page",
    "Query",
    "SQLiteStore",
    "SchemaTooNew",
    "Store",
    "StoreUnavailable",
    "StoredOperationExists",
    "StoredOperationMissing",
    "open_store",
    "state_of",
]
