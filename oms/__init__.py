"""oms -- an exchange-style Order Management System driven from Jupyter.

    import oms
    with oms.open("data/oms.duckdb") as gw:           # or oms.connect("http://127.0.0.1:8000")
        o = gw.create(symbol="INFY", side="BUY", quantity=100, price="1500.25")
        gw.execute(o.order_id)

The core (lifecycle, model, errors, validation, commands, clock) is pure Python;
``engine``/``store`` add DuckDB (psycopg for a PostgreSQL book), ``client``/``api``
HTTP, ``views`` pandas, ``widgets`` ipywidgets. Heavy modules load only when used.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from oms.clock import SimulatedClock, SystemClock
from oms.errors import (
    DatabaseLocked,
    DuplicateClientOrderId,
    InvalidTransition,
    NotADatabase,
    OMSError,
    OrderNotFound,
    PriceOutsideLimit,
    SchemaTooNew,
    StoreError,
    ValidationError,
)
from oms.lifecycle import TRANSITIONS, Action, Status
from oms.model import Order, OrderEvent, OrderType, Side

if TYPE_CHECKING:
    from oms.client import RemoteGateway
    from oms.clock import Clock
    from oms.engine import Engine
    from oms.fix.gateway import FixGateway

__version__: str
"""The installed package's version, read on first use (importlib.metadata costs ~15 ms of
every start, and `oms --help` should not pay it)."""

if not TYPE_CHECKING:  # hidden from mypy, which would otherwise accept any ``oms.<typo>``

    def __getattr__(name: str) -> Any:
        if name != "__version__":
            raise AttributeError(f"module 'oms' has no attribute {name!r}")
        from importlib.metadata import PackageNotFoundError, version

        try:
            value = version("oms-workbench")
        except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
            value = "0+unknown"
        globals()["__version__"] = value
        return value


DEFAULT_DB = "data/oms.duckdb"


def open(
    path: str | os.PathLike[str] = DEFAULT_DB,
    *,
    clock: Clock | None = None,
    threads: int | None = None,
    read_only: bool = False,
) -> Engine:
    """Open the embedded gateway on a DuckDB file (created if missing) or ``":memory:"``,
    or on a PostgreSQL database, ``postgresql://USER:PASSWORD@HOST:PORT/DB`` (its schema
    created if empty; several processes may open one database at once).

    ``threads`` caps DuckDB's worker threads (default: one per core, best for analytics;
    a server of one-row transactions is faster with 1). ``read_only`` opens an existing
    file for reads alone: the file and its write-ahead log are left exactly as found
    (the log's commits are replayed in memory), and commands raise STORE_ERROR. Raises
    StoreError subclasses (DATABASE_LOCKED, NOT_A_DATABASE, SCHEMA_TOO_NEW) that name the
    file and what to do; a file this process cannot write is refused unless ``read_only``.
    A PostgreSQL server that is down, wrong credentials, a missing database or one of
    something else are STORE_ERROR naming the URL (never its password)."""
    from oms.engine import Engine

    return Engine(path, clock=clock, threads=threads, read_only=read_only)


def connect(url: str, *, token: str | None = None, **kwargs: Any) -> RemoteGateway | FixGateway:
    """The same gateway over a running server (``oms serve``): its REST API for an
    ``http(s)://`` URL, or a FIX 4.4 session for ``fix://HOST:PORT?sender=OURS&target=THEIRS``
    (``oms serve --fix-port``; logged on before this returns). ``token`` is the REST API's
    bearer token; a FIX session has none (it is identified by its CompIDs), so it is not used."""
    if url[:6].lower() == "fix://":  # oms.fix.SCHEME, without importing the FIX face for REST
        from oms.fix import connect as connect_fix

        return connect_fix(url, **kwargs)
    from oms.client import RemoteGateway

    return RemoteGateway(url, token=token, **kwargs)


__all__ = [
    "DEFAULT_DB",
    "TRANSITIONS",
    "Action",
    "DatabaseLocked",
    "DuplicateClientOrderId",
    "InvalidTransition",
    "NotADatabase",
    "OMSError",
    "Order",
    "OrderEvent",
    "OrderNotFound",
    "OrderType",
    "PriceOutsideLimit",
    "SchemaTooNew",
    "Side",
    "SimulatedClock",
    "Status",
    "StoreError",
    "SystemClock",
    "ValidationError",
    "__version__",
    "connect",
    "open",
]
