"""Where the reference server keeps Operations: the Store interface (``base``) and one
module per engine (``sqlite``)."""

from .base import Page, Query, Store, StoredOperationMissing
from .sqlite import SQLiteStore

__all__ = ["Page", "Query", "SQLiteStore", "Store", "StoredOperationMissing"]
