"""Where the reference server keeps Operations: the Store interface (``base``), group commit
(``writes``, which both engines share), retention (``retention``: purging what has been
done or deleted long enough) and one module per engine (``sqlite``, and
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
from .retention import Retention, duration_text, parse_duration
from .sqlite import SQLiteStore

__all__ = [
    "SCHEMA_VERSION",
    "STATES",
    "Change",
    "OnChange",
    "Page",
    "Query",
    "Retention",
    "SQLiteStore",
    "SchemaTooNew",
    "Store",
    "StoreUnavailable",
    "StoredOperationExists",
    "StoredOperationMissing",
    "duration_text",
    "open_store",
    "parse_duration",
    "state_of",
]
