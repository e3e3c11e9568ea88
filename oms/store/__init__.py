"""Persistence: the Store protocol and its registry (``oms.store.base``), the DuckDB store
(``oms.store.duck``, the embedded default) and the PostgreSQL store (``oms.store.pg``,
loaded only for a ``postgresql://`` book).

Adapter layer. The DuckDB store's names are re-exported here, as before the split.
"""

from oms.store.base import STORES, BookStore, Catchup, EventRow, StoreKind, is_url, kind_of, open_store, scheme, shown
from oms.store.duck import (
    DEFAULT_DB,
    MEMORY,
    MIGRATIONS,
    ORDER_COLUMNS,
    SCHEMA_VERSION,
    Store,
    event_from_row,
    event_row,
    order_from_row,
    write_problem,
)

__all__ = [
    "DEFAULT_DB",
    "MEMORY",
    "MIGRATIONS",
    "ORDER_COLUMNS",
    "SCHEMA_VERSION",
    "STORES",
    "BookStore",
    "Catchup",
    "EventRow",
    "Store",
    "StoreKind",
    "event_from_row",
    "event_row",
    "is_url",
    "kind_of",
    "open_store",
    "order_from_row",
    "scheme",
    "shown",
    "write_problem",
]
