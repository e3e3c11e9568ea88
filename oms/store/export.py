"""``oms export --parquet DIR``: the event log and the orders of any store as Parquet.

Adapter layer (DuckDB, pyarrow). Rows are streamed from the store in batches of
``BATCH_ROWS`` (``BookStore.stream``: one snapshot, never the whole book in memory), typed
by a scratch DuckDB with the book's own column types and view (so both stores write the
same schema: ``DECIMAL(16, 4)`` prices, UTC timestamps, the typed ``order_events``
columns) and appended to the files as row groups. Files are written under a temporary
name and renamed when complete.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from oms.store.duck import EVENTS_SELECT, ORDER_COLUMNS, ORDER_TABLE_COLUMNS

BATCH_ROWS = 50_000
FILES = {
    "order_events.parquet": (
        "SELECT seq, order_id, payload FROM event_log ORDER BY seq",
        "CREATE TABLE event_log (seq BIGINT, order_id BIGINT, payload VARCHAR)",
        f"{EVENTS_SELECT} ORDER BY seq",
        "event_log",
    ),
    "orders.parquet": (
        f"SELECT {', '.join(ORDER_COLUMNS)} FROM orders ORDER BY order_id",
        f"CREATE TABLE orders ({ORDER_TABLE_COLUMNS})",
        "SELECT * FROM orders ORDER BY order_id",
        "orders",
    ),
}
"""file -> (the store's query, the scratch table, the typed select, the scratch table's name)."""


class Streaming(Protocol):
    def stream(self, query: str, batch_rows: int = ...) -> Iterator[list[tuple[Any, ...]]]: ...


def export_parquet(store: Streaming, folder: str | os.PathLike[str], *, batch_rows: int = BATCH_ROWS) -> dict[str, int]:
    """Write ``order_events.parquet`` and ``orders.parquet`` into ``folder`` (made if
    missing); returns the rows written per file. Raises OSError for a folder it cannot write."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    return {name: _write(store, out / name, *spec, batch_rows=batch_rows) for name, spec in FILES.items()}


def _write(store: Streaming, path: Path, query: str, create: str, typed: str, table: str, *, batch_rows: int) -> int:
    scratch = duckdb.connect(":memory:")
    partial = path.with_name(path.name + ".partial")
    writer: pq.ParquetWriter | None = None
    rows = 0
    try:
        scratch.execute(create)
        columns = [d[0] for d in scratch.execute(f"SELECT * FROM {table} LIMIT 0").description]
        for batch in store.stream(query, batch_rows):
            values = zip(*batch, strict=True)
            incoming = pa.table({name: list(column) for name, column in zip(columns, values, strict=True)})
            scratch.register("incoming", incoming)
            scratch.execute(f"INSERT INTO {table} SELECT * FROM incoming")
            scratch.unregister("incoming")
            writer = _append(writer, partial, scratch.sql(typed).to_arrow_table())
            scratch.execute(f"DELETE FROM {table}")
            rows += len(batch)
        if writer is None:  # an empty book: the files exist, with their columns
            writer = _append(writer, partial, scratch.sql(typed).to_arrow_table())
        writer.close()
        os.replace(partial, path)
    finally:
        scratch.close()
        if partial.exists():
            partial.unlink()
    return rows


def _append(writer: pq.ParquetWriter | None, path: Path, table: pa.Table) -> pq.ParquetWriter:
    if writer is None:
        writer = pq.ParquetWriter(path, table.schema)
    writer.write_table(table)
    return writer
