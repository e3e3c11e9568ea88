"""pandas views over any gateway: the blotter, event histories, summaries, SQL, and the
three-way backend check (gateway == SQL rows == replay of the event log).

Adapter layer. Every frame is Arrow-backed: prices stay exact decimals
(``decimal128(16, 4)``), timestamps are UTC, and rows are always sorted. Over the
embedded engine the frames come straight from DuckDB; over a remote gateway they are
built from the orders it returns and queried with the same SQL in an in-memory DuckDB,
so both transports give identical frames.
"""

from __future__ import annotations

from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from oms.engine import Engine
from oms.gateway import Gateway
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


def to_frame(table: pa.Table) -> pd.DataFrame:
    """An Arrow table as an Arrow-backed DataFrame (exact decimals, no float drift)."""
    return table.to_pandas(types_mapper=pd.ArrowDtype)


def _orders_table(gateway: Gateway, where: str = "", params: list[Any] | None = None) -> pa.Table:
    if isinstance(gateway, Engine):
        sql = f"SELECT {', '.join(ORDER_COLUMNS)} FROM orders {where} ORDER BY order_id"
        return gateway.arrow(sql, params or []).cast(ORDER_SCHEMA)
    return orders_to_arrow(gateway.orders())


def orders_to_arrow(orders: list[Order]) -> pa.Table:
    columns = {name: [getattr(o, name) for o in orders] for name in ORDER_COLUMNS}
    return pa.table(columns, schema=ORDER_SCHEMA)


def blotter(gateway: Gateway, *, status: str | None = None, symbol: str | None = None) -> pd.DataFrame:
    """The orders, one row each, in ``ORDER_COLUMNS`` order, sorted by order id."""
    if status is None and symbol is None:
        return to_frame(_orders_table(gateway))
    if isinstance(gateway, Engine):
        from oms.engine import check_filters

        status, symbol = check_filters(status, symbol)
        conditions = [f"{k} = ?" for k, v in (("status", status), ("symbol", symbol)) if v is not None]
        params = [v for v in (status, symbol) if v is not None]
        return to_frame(_orders_table(gateway, "WHERE " + " AND ".join(conditions), params))
    return to_frame(orders_to_arrow(gateway.orders(status=status, symbol=symbol)))


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
    sql = SUMMARY_SQL.format(key=by)
    if isinstance(gateway, Engine):
        table = gateway.arrow(sql)
    else:
        con = duckdb.connect()
        try:
            con.register("orders", _orders_table(gateway))
            table = con.sql(sql).to_arrow_table()
        finally:
            con.close()
    return to_frame(table)


def sql(gateway: Gateway, query: str, params: list[Any] | None = None) -> pd.DataFrame:
    """Run SQL against the embedded DuckDB store (tables ``orders``, ``order_events``)."""
    if not isinstance(gateway, Engine):
        raise TypeError("SQL needs the embedded store: open it with oms.open(path)")
    return to_frame(gateway.arrow(query, params or []))


def replayed(gateway: Engine) -> pd.DataFrame:
    """The blotter rebuilt from the accepted events alone."""
    return to_frame(orders_to_arrow(gateway.replay()))


def verify_backend(gateway: Engine) -> pd.DataFrame:
    """Three independent reads of the book, compared: what the gateway returns, the rows
    of the ``orders`` table in DuckDB, and the replay of the event log. One row per
    source with its order count and whether it equals the gateway's view."""
    via_gateway = to_frame(orders_to_arrow(gateway.orders()))
    via_sql = to_frame(
        gateway.arrow(f"SELECT {', '.join(ORDER_COLUMNS)} FROM orders ORDER BY order_id").cast(ORDER_SCHEMA)
    )
    via_replay = replayed(gateway)
    rows = [
        ("gateway (get/orders)", len(via_gateway), True),
        ("SQL (orders table)", len(via_sql), via_sql.equals(via_gateway)),
        ("replay (order_events)", len(via_replay), via_replay.equals(via_gateway)),
    ]
    return pd.DataFrame(rows, columns=["source", "orders", "matches_gateway"])
