"""pandas views over any gateway: the blotter, event histories, summaries, SQL, and the
three-way backend check (gateway == SQL rows == replay of the event log).

Adapter layer. Every frame is Arrow-backed: prices stay exact decimals
(``decimal128(16, 4)``), timestamps are UTC, and rows are always sorted. A gateway that
offers SQL (``oms.gateway.SqlCapable``: the embedded engine, and a server through
``POST /sql``) answers with Arrow straight from DuckDB, so both transports give
identical frames; the blotter reads it in keyset pages of ``PAGE_ROWS``. Any other
gateway's orders are framed here and queried with the same SQL in an in-memory DuckDB.
"""

from __future__ import annotations

from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from oms.commands import replay
from oms.engine import check_filters
from oms.gateway import Gateway, SqlCapable
from oms.model import Order, OrderEvent
from oms.store import ORDER_COLUMNS

PRICE = pa.decimal128(16, 4)
UTC_MS = pa.timestamp("ms", tz="UTC")

ORDER_SCHEMA = pa.schema(
    [
        ("order_id", pa.int64()), ("client_order_id", pa.string()), ("symbol", pa.string()),
        ("side", pa.string()), ("order_type", pa.string()), ("quantity", pa.int64()),
        ("price", PRICE), ("status", pa.string()), ("version", pa.int32()),
        ("executed_quantity", pa.int64()), ("executed_price", PRICE),
        ("created_at", UTC_MS), ("updated_at", UTC_MS),
    ]
)  # fmt: skip
assert tuple(ORDER_SCHEMA.names) == ORDER_COLUMNS

EVENT_SCHEMA = pa.schema(
    [
        ("seq", pa.int64()), ("order_id", pa.int64()), ("action", pa.string()),
        ("from_status", pa.string()), ("to_status", pa.string()), ("accepted", pa.bool_()),
        ("reason", pa.string()), ("at", UTC_MS), ("version", pa.int32()),
        ("client_order_id", pa.string()), ("symbol", pa.string()), ("side", pa.string()),
        ("order_type", pa.string()), ("quantity", pa.int64()), ("price", PRICE),
        ("executed_quantity", pa.int64()), ("executed_price", PRICE), ("message", pa.string()),
    ]
)  # fmt: skip

SUMMARY_SQL = """
    SELECT {key},
           count(*) AS orders,
           sum(quantity)::BIGINT AS quantity,
           sum(quantity * price)::DECIMAL(38, 4) AS notional,
           sum(executed_quantity)::BIGINT AS executed_quantity,
           coalesce(sum(executed_quantity * executed_price), 0)::DECIMAL(38, 4) AS executed_notional
    FROM orders GROUP BY {key} ORDER BY {key}
"""
SUMMARY_KEYS = ("status", "symbol", "side", "order_type")
PAGE_ROWS = 50_000
"""Orders per page when the blotter reads a book over SQL."""
ORDERS_SQL = f"SELECT {', '.join(ORDER_COLUMNS)} FROM orders"


def to_frame(table: pa.Table) -> pd.DataFrame:
    """An Arrow table as an Arrow-backed DataFrame (exact decimals, no float drift)."""
    return table.to_pandas(types_mapper=pd.ArrowDtype)


def _orders_table(gateway: Gateway, *, status: str | None = None, symbol: str | None = None) -> pa.Table:
    """Every order (filtered), sorted by id: in keyset pages over SQL when the gateway
    offers it, else from its ``orders()``."""
    if not isinstance(gateway, SqlCapable):
        return orders_to_arrow(gateway.orders(status=status, symbol=symbol))
    status, symbol = check_filters(status, symbol)
    filters = [(name, value) for name, value in (("status", status), ("symbol", symbol)) if value is not None]
    where = "".join(f" AND {name} = ?" for name, _ in filters)
    sql = f"{ORDERS_SQL} WHERE order_id > ?{where} ORDER BY order_id LIMIT {PAGE_ROWS}"
    pages, after = [], 0
    while True:
        page = gateway.sql_arrow(sql, [after, *(value for _, value in filters)]).cast(ORDER_SCHEMA)
        pages.append(page)
        if page.num_rows < PAGE_ROWS:
            return pa.concat_tables(pages)
        after = page.column("order_id")[-1].as_py()


def orders_to_arrow(orders: list[Order]) -> pa.Table:
    columns = {name: [getattr(o, name) for o in orders] for name in ORDER_COLUMNS}
    return pa.table(columns, schema=ORDER_SCHEMA)


def blotter(gateway: Gateway, *, status: str | None = None, symbol: str | None = None) -> pd.DataFrame:
    """The orders, one row each, in ``ORDER_COLUMNS`` order, sorted by order id.
    Raises VALIDATION_ERROR for a bad filter."""
    return to_frame(_orders_table(gateway, status=status, symbol=symbol))


def events_to_arrow(events: list[OrderEvent]) -> pa.Table:
    columns: dict[str, list[Any]] = {name: [] for name in EVENT_SCHEMA.names}
    for event in events:
        d = event.to_dict()
        d["at"] = event.at
        for name in EVENT_SCHEMA.names:
            columns[name].append(d.get(name))
    return pa.table(columns, schema=EVENT_SCHEMA)


def events(gateway: Gateway, order_id: int | None = None) -> pd.DataFrame:
    """The audit log, oldest first: accepted and refused commands, with what each changed."""
    return to_frame(events_to_arrow(gateway.events(order_id)))


def summary(gateway: Gateway, by: str = "status") -> pd.DataFrame:
    """Counts, quantity and notional per ``by`` (status, symbol, side or order_type)."""
    if by not in SUMMARY_KEYS:
        raise ValueError(f"by must be one of {', '.join(SUMMARY_KEYS)}, got {by!r}")
    query = SUMMARY_SQL.format(key=by)
    if isinstance(gateway, SqlCapable):
        return to_frame(gateway.sql_arrow(query))
    con = duckdb.connect()
    try:
        con.register("orders", _orders_table(gateway))
        return to_frame(con.sql(query).to_arrow_table())
    finally:
        con.close()


def sql(gateway: Gateway, query: str, params: list[Any] | None = None) -> pd.DataFrame:
    """One read-only SELECT over the book's DuckDB tables (``orders``, ``order_events``,
    ...) with ``?`` parameters: the same frame on either transport (``SqlCapable``).
    Raises SQL_REFUSED (anything that could write or reach files: nothing ran),
    SQL_ERROR, SQL_TIMEOUT, SQL_TOO_LARGE; TypeError for a gateway without SQL."""
    if not isinstance(gateway, SqlCapable):
        raise TypeError(f"{gateway!r} offers no SQL (no sql_arrow): use oms.open(path) or a server's oms.connect(url)")
    return to_frame(gateway.sql_arrow(query, params or []))


def replayed(gateway: Gateway) -> pd.DataFrame:
    """The blotter rebuilt from the accepted events of the audit log alone."""
    rebuilt = replay([e for e in gateway.events() if e.accepted])
    return to_frame(orders_to_arrow([rebuilt[k] for k in sorted(rebuilt)]))


def verify_backend(gateway: Gateway) -> pd.DataFrame:
    """Three independent reads of the book, compared: what the gateway returns, the rows
    of the ``orders`` table in DuckDB (SQL, on either transport), and the replay of the
    event log. One row per source with its order count and whether it equals the
    gateway's view. TypeError for a gateway without SQL."""
    if not isinstance(gateway, SqlCapable):
        raise TypeError(f"{gateway!r} offers no SQL: the backend check needs the orders table")
    via_gateway = to_frame(orders_to_arrow(gateway.orders()))
    via_sql = to_frame(gateway.sql_arrow(f"{ORDERS_SQL} ORDER BY order_id").cast(ORDER_SCHEMA))
    via_replay = replayed(gateway)
    rows = [
        ("gateway (get/orders)", len(via_gateway), True),
        ("SQL (orders table)", len(via_sql), via_sql.equals(via_gateway)),
        ("replay (order_events)", len(via_replay), via_replay.equals(via_gateway)),
    ]
    return pd.DataFrame(rows, columns=["source", "orders", "matches_gateway"])
