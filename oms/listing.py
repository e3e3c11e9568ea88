"""The order listing as JSON text, written by DuckDB itself: what ``GET /orders`` sends.

Adapter layer (the engine's half of the listing; imports nothing heavy itself). Every row
of the ``orders`` view becomes the exact text ``oms.jsonio.dumps(order.to_dict())`` would
write -- the same keys in the same order, ``", "`` and ``": "`` separators, prices as
canonical JSON numbers (``1500.25``, ``1500``; never ``1500.2500``), timestamps as
``2026-01-05T09:15:00.000Z`` -- so a listing costs one query and no Python per order.
Pages are keyset pages: the orders after an id, sorted by id, at most ``limit`` of them.
A full listing is streamed: the query runs once (one snapshot of the book) and its rows
are sent batch by batch as they are fetched.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb

BATCH_ROWS = 20_000
"""Rows per streamed chunk of a full listing."""


def _text(column: str) -> str:
    """A JSON string of a VARCHAR that holds printable ASCII (as validation guarantees):
    only the backslash and the quote need escaping, as ``json.dumps`` escapes them."""
    return f"""'"' || replace(replace({column}, '\\', '\\\\'), '"', '\\"') || '"'"""


def _price(column: str) -> str:
    """A DECIMAL(16, 4) as its canonical JSON number: trailing zeros and a bare point dropped."""
    return f"rtrim(rtrim({column}::VARCHAR, '0'), '.')"


def _ts(column: str) -> str:
    return f"""strftime({column}, '"%Y-%m-%dT%H:%M:%S.%gZ"')"""


def _quoted(column: str) -> str:
    """A VARCHAR that needs no escaping (symbols, sides, types, statuses) as a JSON string."""
    return f"""'"' || {column} || '"'"""


def _nullable(sql: str) -> str:
    return f"coalesce({sql}, 'null')"


# (key, the SQL of its JSON value), in the order of Order.to_dict.
FIELDS = (
    ("order_id", "order_id::VARCHAR"),
    ("client_order_id", _nullable(_text("client_order_id"))),
    ("symbol", _quoted("symbol")),
    ("side", _quoted("side")),
    ("order_type", _quoted("order_type")),
    ("quantity", "quantity::VARCHAR"),
    ("price", _nullable(_price("price"))),
    ("status", _quoted("status")),
    ("version", "version::VARCHAR"),
    ("executed_quantity", "executed_quantity::VARCHAR"),
    ("executed_price", _nullable(_price("executed_price"))),
    ("created_at", _ts("created_at")),
    ("updated_at", _ts("updated_at")),
)
# Each row starts with the separator ", "; the first row's is cut when the array is written.
ROW_JSON = "', {' || " + " || ', ' || ".join(f"""'"{key}": ' || {value}""" for key, value in FIELDS) + " || '}'"


@dataclass
class JsonListing:
    """A listing's JSON array text, in chunks (``chunks`` is consumed once), and -- for a
    page with more orders after it -- the id to continue after (else None)."""

    chunks: Iterator[bytes]
    next_after: int | None = None


def query(*, status: str | None, symbol: str | None, after: int | None, limit: int | None) -> tuple[str, list[Any]]:
    """The SQL (and its parameters) of one listing; ``limit`` asks for one row more, to
    know whether more remain."""
    conditions: list[str] = []
    params: list[Any] = []
    for name, value in (("status", status), ("symbol", symbol)):
        if value is not None:
            conditions.append(f"{name} = ?")
            params.append(value)
    if after is not None:
        conditions.append("order_id > ?")
        params.append(after)
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    if limit is None:
        return f"SELECT order_id, {ROW_JSON} AS j FROM orders {where} ORDER BY order_id", params
    params.append(limit + 1)
    # The page's rows first (a top-N on the id), then the text of just those rows.
    page = f"SELECT * FROM orders {where} ORDER BY order_id LIMIT ?"
    return f"SELECT order_id, {ROW_JSON} AS j FROM ({page}) ORDER BY order_id", params


def listing(
    cursor: duckdb.DuckDBPyConnection,
    *,
    status: str | None = None,
    symbol: str | None = None,
    after: int | None = None,
    limit: int | None = None,
) -> JsonListing:
    """Run the listing on ``cursor`` (a connection of its own, closed when the listing is
    done). A page (``limit``) is read at once; a full listing is read as it is sent."""
    import duckdb

    from oms.errors import StoreError

    sql, params = query(status=status, symbol=symbol, after=after, limit=limit)
    try:
        result = cursor.sql(sql, params=params)
        if limit is not None:
            table = result.to_arrow_table()
            more = table.num_rows > limit
            page = table.slice(0, limit)
            next_after = int(page.column(0)[-1].as_py()) if more else None
            return JsonListing(iter([_array(page.column(1).chunks)]), next_after)
        reader = result.to_arrow_reader(BATCH_ROWS)
    except duckdb.Error as e:
        cursor.close()
        raise StoreError(f"the order listing failed: {str(e).strip().splitlines()[0][:300]}") from e
    except BaseException:
        cursor.close()
        raise
    return JsonListing(_stream(cursor, reader))


def _stream(cursor: duckdb.DuckDBPyConnection, reader: Any) -> Iterator[bytes]:
    try:
        first = True
        for batch in reader:
            if batch.num_rows == 0:
                continue
            text = _joined(batch.column(1))
            yield (b"[" + text[2:]) if first else text
            first = False
        yield b"[]" if first else b"]"
    finally:
        cursor.close()


def _array(chunks: list[Any]) -> bytes:
    text = b"".join(_joined(chunk) for chunk in chunks)
    return b"[" + text[2:] + b"]" if text else b"[]"


def _joined(strings: Any) -> bytes:
    """The values of an Arrow string array, concatenated: its data buffer between the
    first and the last offset (no copy per row)."""
    if len(strings) == 0:
        return b""
    import pyarrow as pa

    if strings.type not in (pa.string(), pa.large_string()):
        strings = strings.cast(pa.large_string())
    if strings.null_count:  # never: every column a row uses is NOT NULL or coalesced
        raise ValueError("a listing row is NULL")
    _validity, offsets, data = strings.buffers()
    offset = memoryview(offsets).cast("q" if strings.type == pa.large_string() else "i")
    start, end = offset[strings.offset], offset[strings.offset + len(strings)]
    return memoryview(data)[start:end].tobytes()
