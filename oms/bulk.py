"""The bulk path: many create commands validated column-wise and ingested as one Arrow
table (DuckDB reads it without copying row by row).

Adapter layer (pyarrow). The rules are those of ``validation`` -- same patterns, same
bounds, same messages per field -- applied to whole columns; a test holds both paths to
the same verdicts.
"""

from __future__ import annotations

from collections.abc import Set
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from oms.errors import DuplicateClientOrderId, ValidationError
from oms.lifecycle import INITIAL_STATUS, Action
from oms.model import PRICE_PLACES
from oms.validation import CREATE_FIELDS, MAX_QUANTITY, SYMBOL_PATTERN, parse_price

PRICE_TYPE = pa.decimal128(16, PRICE_PLACES)
MAX_REPORTED_ROWS = 5

EVENT_SCHEMA = pa.schema(
    [
        ("seq", pa.int64()), ("order_id", pa.int64()), ("action", pa.string()),
        ("from_status", pa.string()), ("to_status", pa.string()), ("accepted", pa.bool_()),
        ("reason", pa.string()), ("message", pa.string()), ("event_at", pa.timestamp("us")),
        ("client_order_id", pa.string()), ("symbol", pa.string()), ("side", pa.string()),
        ("order_type", pa.string()), ("quantity", pa.int64()), ("price", PRICE_TYPE),
        ("version", pa.int32()), ("executed_quantity", pa.int64()), ("executed_price", PRICE_TYPE),
        ("created_at", pa.timestamp("us")), ("request", pa.string()),
    ]
)  # fmt: skip


def _to_table(orders: Any) -> pa.Table:
    if isinstance(orders, pa.Table):
        return orders
    if isinstance(orders, list):
        if not orders:
            raise ValidationError("no orders to load", "body")
        names = sorted({k for row in orders for k in row}, key=str)
        return pa.table(_columns({c: [row.get(c) for row in orders] for c in names}))
    if hasattr(orders, "to_dict") and hasattr(orders, "columns"):  # a pandas DataFrame
        try:
            return pa.Table.from_pandas(orders, preserve_index=False)
        except (pa.ArrowException, OverflowError, ValueError, TypeError):
            return pa.table(_columns({str(c): orders[c] for c in orders.columns}))
    raise ValidationError(f"expected a DataFrame, an Arrow table or a list of dicts, got {type(orders).__name__}")


def _columns(values: dict[str, Any]) -> dict[str, pa.Array]:
    """Each column as an Arrow array; a column Arrow cannot hold (a decimal such as
    1e-1000027, a 5000-digit integer, mixed types) is refused naming it."""
    columns, errors = {}, []
    for name, column in values.items():
        try:
            columns[name] = pa.array(column, from_pandas=True)
        except (pa.ArrowException, OverflowError, ValueError, TypeError) as e:
            reason = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
            errors.append({"field": name, "message": f"cannot be read as one column of values ({reason})"})
    if errors:
        raise ValidationError(errors)
    return columns


class _Report:
    def __init__(self) -> None:
        self.errors: list[dict[str, str]] = []

    def rows(self, field: str, bad: np.ndarray, message: str) -> None:
        index = np.flatnonzero(bad)
        if index.size == 0:
            return
        shown = ", ".join(str(i) for i in index[:MAX_REPORTED_ROWS])
        more = f" (+{index.size - MAX_REPORTED_ROWS} more)" if index.size > MAX_REPORTED_ROWS else ""
        self.errors.append({"field": field, "message": f"rows {shown}{more}: {message}"})


def _mask(array: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(array, True).to_numpy(zero_copy_only=False), dtype=bool)


def _column(table: pa.Table, name: str) -> pa.ChunkedArray:
    if name in table.column_names:
        return table.column(name)
    return pa.chunked_array([pa.nulls(table.num_rows)])


def _enum(column: pa.ChunkedArray, choices: tuple[str, ...], field: str, report: _Report) -> pa.ChunkedArray:
    is_text = pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
    if not is_text and not pa.types.is_null(column.type):
        report.errors.append({"field": field, "message": f"must be text ({'|'.join(choices)})"})
        return pa.chunked_array([pa.nulls(len(column), pa.string())])
    upper = pc.utf8_upper(column.cast(pa.string()))
    report.rows(field, ~_mask(pc.is_in(upper, pa.array(choices))), f"must be {'|'.join(choices)}")
    return upper


def _prices(column: pa.ChunkedArray, report: _Report) -> pa.Array:
    """Exact decimal prices; nulls stay null (the LIMIT/MARKET rule is checked after)."""
    # Each price goes through the one parser single creates use, so both paths agree exactly
    # (a float is read from its shortest repr: 0.1 is 0.1, and 0.1 + 0.2 is refused).
    parsed: list[Any] = column.to_pylist()
    out: list[Decimal | None] = []
    bad = np.zeros(len(parsed), dtype=bool)
    messages: dict[str, list[int]] = {}
    for i, value in enumerate(parsed):
        if value is None:
            out.append(None)
            continue
        try:
            out.append(parse_price(value))
        except ValidationError as e:
            bad[i] = True
            messages.setdefault(e.errors[0]["message"].split(", got")[0], []).append(i)
            out.append(None)
    for message, rows in messages.items():
        mask = np.zeros(len(parsed), dtype=bool)
        mask[rows] = True
        report.rows("price", mask, message)
    return pa.array(out, PRICE_TYPE)


def build_create_events(
    orders: Any,
    *,
    first_seq: int,
    first_order_id: int,
    at: datetime,
    existing_client_order_ids: Set[str],
) -> tuple[pa.Table, set[str]]:
    """Validate ``orders`` and return (the create events as an Arrow table, the new client
    order ids). Raises ValidationError or DuplicateClientOrderId; builds nothing partial."""
    table = _to_table(orders)
    n = table.num_rows
    report = _Report()
    if n == 0:
        raise ValidationError("no orders to load", "body")
    unknown = sorted(set(table.column_names) - set(CREATE_FIELDS))
    for name in unknown:
        report.errors.append({"field": name, "message": f"unknown column; expected some of {', '.join(CREATE_FIELDS)}"})

    symbol = _column(table, "symbol")
    if pa.types.is_string(symbol.type) or pa.types.is_large_string(symbol.type):
        ok = _mask(pc.match_substring_regex(symbol, f"^{SYMBOL_PATTERN.pattern}$")) & ~_mask(pc.is_null(symbol))
        report.rows("symbol", ~ok, "must be 1-16 letters, digits or . - _")
        symbol = pc.utf8_upper(symbol)
    else:
        report.errors.append({"field": "symbol", "message": "must be a text column"})

    side = _enum(_column(table, "side"), ("BUY", "SELL"), "side", report)
    raw_type = _column(table, "order_type")
    order_type = _enum(pc.fill_null(raw_type.cast(pa.string()), "LIMIT"), ("LIMIT", "MARKET"), "order_type", report)

    quantity = _column(table, "quantity")
    if pa.types.is_integer(quantity.type):
        q = quantity.cast(pa.int64())
        in_range = _mask(pc.and_(pc.greater_equal(q, 1), pc.less_equal(q, MAX_QUANTITY)))
        message = f"must be a whole number between 1 and {MAX_QUANTITY:,}"
        report.rows("quantity", _mask(pc.is_null(q)) | ~in_range, message)
    else:
        report.errors.append({"field": "quantity", "message": f"must be whole numbers, got a {quantity.type} column"})
        q = None

    raw_price = _column(table, "price")
    price = _prices(raw_price, report)
    is_market = np.asarray(pc.equal(order_type, "MARKET").to_numpy(zero_copy_only=False), dtype=bool)
    raw_has_price = ~_mask(pc.is_null(raw_price))
    report.rows("price", is_market & raw_has_price, "must be absent for a MARKET order")
    report.rows("price", ~is_market & ~raw_has_price, "is required for a LIMIT order")

    client = _column(table, "client_order_id")
    new_ids: set[str] = set()
    duplicate: str | None = None
    if not pa.types.is_null(client.type):
        values = client.cast(pa.string()).to_pylist()
        seen: set[str] = set()
        for value in values:
            if value is None:
                continue
            if value in existing_client_order_ids or value in seen:
                duplicate = duplicate or value
            seen.add(value)
        new_ids = seen
        client = client.cast(pa.string())

    if report.errors:
        raise ValidationError(report.errors)
    if duplicate is not None:
        raise DuplicateClientOrderId(duplicate)

    naive_at = at.astimezone(UTC).replace(tzinfo=None)
    seq = np.arange(first_seq, first_seq + n, dtype=np.int64)
    ids = np.arange(first_order_id, first_order_id + n, dtype=np.int64)
    events = pa.table(
        {
            "seq": seq,
            "order_id": ids,
            "action": pa.array([Action.CREATE.value] * n, pa.string()),
            "from_status": pa.nulls(n, pa.string()),
            "to_status": pa.array([INITIAL_STATUS.value] * n, pa.string()),
            "accepted": pa.array(np.ones(n, dtype=bool)),
            "reason": pa.nulls(n, pa.string()),
            "message": pa.nulls(n, pa.string()),
            "event_at": pa.array(np.full(n, np.datetime64(naive_at, "us"))),
            "client_order_id": client if not pa.types.is_null(client.type) else pa.nulls(n, pa.string()),
            "symbol": symbol,
            "side": side,
            "order_type": order_type,
            "quantity": q,
            "price": price,
            "version": pa.array(np.ones(n, dtype=np.int32)),
            "executed_quantity": pa.array(np.zeros(n, dtype=np.int64)),
            "executed_price": pa.nulls(n, PRICE_TYPE),
            "created_at": pa.array(np.full(n, np.datetime64(naive_at, "us"))),
            "request": pa.array(['{"bulk": true}'] * n, pa.string()),
        },
        schema=EVENT_SCHEMA,
    )
    return events, new_ids
