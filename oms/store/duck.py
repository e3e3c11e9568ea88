"""The DuckDB store: schema and migrations, the append-only event log, the projection.

Adapter layer (imports duckdb; the core never imports this). Layout in the file:

- ``event_log`` -- append-only, one row per command, accepted or refused:
  ``(seq, order_id, payload)``, the payload a JSON object. An accepted row carries the
  order as the command left it. ``order_events`` is the same log as a typed view.
- ``orders_snapshot`` + ``projection_state.folded_seq`` -- the projection up to a
  sequence number; ``fold()`` moves it forward in one transaction.
- ``orders`` -- a view: the snapshot, overlaid with the latest accepted event of every
  order changed after ``folded_seq``. It reflects every commit at once, while a command
  costs one narrow INSERT and one commit (DuckDB's cost is per statement and per column).

Every DuckDB failure leaves this module as a StoreError naming the file and what to do.
A store opened for writing first proves it can write beside the file (``write_problem``);
one opened ``read_only`` never writes the file or its write-ahead log, whose commits
DuckDB replays in memory.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import duckdb

from oms.errors import DatabaseLocked, NotADatabase, StoreError
from oms.lifecycle import Action, Status
from oms.model import CHANGED_FIELDS, Order, OrderEvent, OrderType, Side, canonical_decimal
from oms.store.base import Catchup, EventRow, schema_version

if TYPE_CHECKING:
    import pyarrow as pa

T = TypeVar("T")

SCHEMA_VERSION = 2
DEFAULT_DB = "data/oms.duckdb"
MEMORY = ":memory:"

ORDER_COLUMNS = (
    "order_id", "client_order_id", "symbol", "side", "order_type", "quantity", "price",
    "status", "version", "executed_quantity", "executed_price", "created_at", "updated_at",
)  # fmt: skip
ORDER_TABLE_COLUMNS = """
    order_id BIGINT NOT NULL, client_order_id VARCHAR, symbol VARCHAR NOT NULL,
    side VARCHAR NOT NULL, order_type VARCHAR NOT NULL, quantity BIGINT NOT NULL,
    price DECIMAL(16, 4), status VARCHAR NOT NULL, version INTEGER NOT NULL,
    executed_quantity BIGINT NOT NULL, executed_price DECIMAL(16, 4),
    created_at TIMESTAMP NOT NULL, updated_at TIMESTAMP NOT NULL
"""

# Payload fields of the log and their SQL types in the typed view.
PAYLOAD_TYPES = {
    "action": "VARCHAR", "from_status": "VARCHAR", "to_status": "VARCHAR", "accepted": "BOOLEAN",
    "reason": "VARCHAR", "message": "VARCHAR", "event_at": "TIMESTAMP", "client_order_id": "VARCHAR",
    "symbol": "VARCHAR", "side": "VARCHAR", "order_type": "VARCHAR", "quantity": "BIGINT",
    "price": "DECIMAL(16, 4)", "version": "INTEGER", "executed_quantity": "BIGINT",
    "executed_price": "DECIMAL(16, 4)", "created_at": "TIMESTAMP",
}  # fmt: skip
_TYPED_PAYLOAD = ",\n".join(f"(payload->>'$.{name}')::{sql_type} AS {name}" for name, sql_type in PAYLOAD_TYPES.items())

EVENTS_SELECT = f"SELECT seq, order_id, {_TYPED_PAYLOAD}, payload->'$.request' AS request FROM event_log"
"""The typed ``order_events`` view over the three columns of ``event_log``."""

# The latest accepted event of every order changed after the fold point, as order rows.
_TAIL = """
    SELECT order_id, client_order_id, symbol, side, order_type, quantity, price,
           to_status AS status, version, executed_quantity, executed_price, created_at,
           event_at AS updated_at
    FROM order_events
    WHERE seq > (SELECT folded_seq FROM projection_state) AND accepted
    QUALIFY row_number() OVER (PARTITION BY order_id ORDER BY seq DESC) = 1
"""

# DDL lives here and only here. Each version's statements run in one transaction.
# The log is three columns wide on purpose: DuckDB's cost per INSERT grows with the number
# of columns (~50 us each here), and a command must cost about one narrow INSERT.
MIGRATIONS: dict[int, list[str]] = {
    1: [
        "CREATE TABLE oms_schema (version INTEGER NOT NULL, applied_at TIMESTAMP NOT NULL)",
        "CREATE TABLE event_log (seq BIGINT NOT NULL, order_id BIGINT, payload VARCHAR NOT NULL)",
        f"CREATE VIEW order_events AS {EVENTS_SELECT}",
        f"CREATE TABLE orders_snapshot ({ORDER_TABLE_COLUMNS})",
        "CREATE TABLE projection_state (folded_seq BIGINT NOT NULL)",
        "INSERT INTO projection_state VALUES (0)",
        f"""CREATE VIEW orders AS
            WITH tail AS ({_TAIL})
            SELECT * FROM orders_snapshot WHERE order_id NOT IN (SELECT order_id FROM tail)
            UNION ALL SELECT * FROM tail""",
    ],
    # Version 2 is PostgreSQL's commit function (``oms.store.pg``): nothing changes in a
    # DuckDB file, and a read of a version-1 file needs no upgrade (``_READS_FROM``).
    2: [],
}
_READS_FROM = max(version for version, statements in MIGRATIONS.items() if statements)
"""The oldest schema a read-only open reads as it is: every later version is empty here."""

_LOCK_PID = re.compile(r"PID (\d+)")


def naive_utc(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(tzinfo=None)


def _aware(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC)


def _ts_text(at: datetime) -> str:
    return naive_utc(at).isoformat(sep=" ", timespec="milliseconds")


MAX_STORED_TEXT = 256
"""Longer text in a refused request is kept cut to this length in the audit log."""


MAX_STORED_DEPTH = 32
"""Deeper nesting in a refused request is kept as a marker in the audit log."""


def _json_safe(value: Any, depth: int = 0) -> Any:
    """Request values as valid JSON: exact decimals and odd floats become text, long text
    is cut, nesting deeper than MAX_STORED_DEPTH is replaced by a marker."""
    if isinstance(value, (dict, list, tuple)) and depth >= MAX_STORED_DEPTH:
        return f"<nested deeper than {MAX_STORED_DEPTH} levels>"
    if isinstance(value, dict):
        return {str(k): _json_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v, depth + 1) for v in value]
    if isinstance(value, str):
        return value if len(value) <= MAX_STORED_TEXT else value[:MAX_STORED_TEXT] + "…"
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if -(2**63) <= value < 2**63:
            return value
        return str(value) if value.bit_length() <= 4000 else f"<an integer of {value.bit_length()} bits>"
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    return str(value)


def event_row(
    seq: int,
    action: Action,
    order_id: int | None,
    at: datetime,
    request: dict[str, Any],
    *,
    before: Order | None,
    after: Order | None = None,
    refusal: tuple[str, str] | None = None,
) -> tuple[int, int | None, str]:
    """The ``event_log`` row of one command: accepted (``after``) or refused (``refusal``).

    An accepted row carries the order as the command left it."""
    payload: dict[str, Any] = {
        "action": action.value,
        "from_status": before.status.value if before else None,
        "to_status": after.status.value if after else None,
        "accepted": after is not None,
        "reason": refusal[0] if refusal else None,
        "message": refusal[1] if refusal else None,
        "event_at": _ts_text(at),
    }
    if after is not None:
        payload.update(
            client_order_id=after.client_order_id,
            symbol=after.symbol,
            side=after.side.value,
            order_type=after.order_type.value,
            quantity=after.quantity,
            price=None if after.price is None else str(after.price),
            version=after.version,
            executed_quantity=after.executed_quantity,
            executed_price=None if after.executed_price is None else str(after.executed_price),
            created_at=_ts_text(after.created_at),
        )
    payload["request"] = _json_safe(request)
    return (seq, order_id, json.dumps(payload, separators=(",", ":")))


def order_from_row(row: Sequence[Any]) -> Order:
    (order_id, client_order_id, symbol, side, order_type, quantity, price, status, version,
     executed_quantity, executed_price, created_at, updated_at) = row  # fmt: skip
    return Order(
        order_id=order_id,
        client_order_id=client_order_id,
        symbol=symbol,
        side=Side(side),
        order_type=OrderType(order_type),
        quantity=quantity,
        price=price,
        status=Status(status),
        version=version,
        executed_quantity=executed_quantity,
        executed_price=executed_price,
        created_at=_aware(created_at),
        updated_at=_aware(updated_at),
    )


def event_from_row(row: Sequence[Any]) -> OrderEvent:
    """An OrderEvent from an ``event_log`` row (seq, order_id, payload)."""
    seq, order_id, payload = row
    values = json.loads(payload)
    action = Action(values["action"])
    accepted = values["accepted"]
    changes = {k: values.get(k) for k in CHANGED_FIELDS[action]} if accepted else {}
    for key in ("price", "executed_price"):
        if changes.get(key) is not None:
            changes[key] = canonical_decimal(Decimal(changes[key]))
    return OrderEvent(
        seq=seq,
        order_id=order_id,
        action=action,
        from_status=Status(values["from_status"]) if values["from_status"] else None,
        to_status=Status(values["to_status"]) if values["to_status"] else None,
        accepted=accepted,
        reason=values["reason"],
        message=values["message"],
        at=_aware(datetime.fromisoformat(values["event_at"])),
        version=values.get("version"),
        changes=changes,
        request=None if accepted else values["request"],
    )


class Store:
    """One DuckDB database holding the OMS schema (``oms.store.base.BookStore``). Not
    thread-safe on its own: the engine serializes writers; reads take ``self.lock`` too
    (one connection). The file has one writer process, so ``writing`` has nothing to
    catch up on and ``append`` is the commit."""

    shared = False

    def __init__(
        self, path: str | os.PathLike[str] = DEFAULT_DB, *, threads: int | None = None, read_only: bool = False
    ) -> None:
        self.path = str(path)
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise ValueError(f"threads must be a positive integer, got {threads!r}")
        self.lock = threading.RLock()
        self.read_only = read_only and self.path != MEMORY
        self._con = _connect_read_only(self.path) if self.read_only else _connect(self.path)
        try:
            if threads is not None:
                # DuckDB hands even a one-row statement to its worker threads; with one,
                # it runs on the caller's thread (~0.07 ms less per command, measured).
                self._con.execute(f"SET threads = {threads}")
            if self.read_only:
                return
            try:
                self._migrate()
            except duckdb.Error as e:
                raise open_failure(self.path, e) from None
        except BaseException:
            self._con.close()
            raise

    # ---- opening -------------------------------------------------------------------

    def _migrate(self) -> None:
        version = _schema_version(self._con, self.path)
        for target in sorted(v for v in MIGRATIONS if v > version):
            with self.transaction():
                for statement in MIGRATIONS[target]:
                    self._con.execute(statement)
                self._con.execute("INSERT INTO oms_schema VALUES (?, ?)", [target, naive_utc(datetime.now(UTC))])

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self.lock:
            self._con.begin()
            try:
                yield self._con
            except BaseException:
                self._con.rollback()
                raise
            self._con.commit()

    # ---- writing ---------------------------------------------------------------------

    def writing(self, since: int) -> AbstractContextManager[Catchup | None]:
        """One commit (``append`` commits it): this process is the file's only writer."""
        return nullcontext(None)

    def append(self, rows: Sequence[EventRow]) -> None:
        """Append event rows in ONE statement; returns once they are committed."""
        if not rows:
            return
        sql = "INSERT INTO event_log VALUES " + ", ".join(["(?, ?, ?)"] * len(rows))
        params = [value for row in rows for value in row]
        with self.lock:
            self._guard(lambda: self._con.execute(sql, params))

    def append_arrow(self, table: pa.Table) -> None:
        """Append a whole Arrow table of create events (``oms.bulk.EVENT_SCHEMA``) and
        their orders, in one transaction."""
        with self.lock:
            self._guard(lambda: self._append_creates(table))

    def _append_creates(self, table: pa.Table) -> None:
        with self.transaction() as con:
            self._fold(con)
            con.register("incoming_events", table)
            try:
                con.execute(f"INSERT INTO event_log {BULK_LOG_SELECT}")
                con.execute(
                    "INSERT INTO orders_snapshot SELECT order_id, client_order_id, symbol, side, order_type, "
                    "quantity, price, to_status, version, executed_quantity, executed_price, created_at, "
                    "event_at FROM incoming_events"
                )
            finally:
                con.unregister("incoming_events")
            con.execute("UPDATE projection_state SET folded_seq = (SELECT max(seq) FROM event_log)")

    def append_log(self, table: pa.Table) -> None:
        """Append ``event_log`` rows (seq, order_id, payload) from an Arrow table, as they
        are: how a DuckDB copy of another store's log is kept up to date."""
        with self.lock:
            self._guard(lambda: self._append_log(table))

    def _append_log(self, table: pa.Table) -> None:
        self._con.register("incoming_log", table)
        try:
            self._con.execute("INSERT INTO event_log SELECT seq, order_id, payload FROM incoming_log")
        finally:
            self._con.unregister("incoming_log")

    def fold(self) -> None:
        """Move the snapshot up to the newest event (one transaction; safe at any time)."""
        with self.lock:
            self._guard(lambda: self._fold_in_transaction())

    def _fold_in_transaction(self) -> None:
        with self.transaction() as con:
            self._fold(con)

    @staticmethod
    def _fold(con: duckdb.DuckDBPyConnection) -> None:
        con.execute(f"CREATE OR REPLACE TEMP TABLE folding AS {_TAIL}")
        # Never run an empty INSERT ... SELECT here: with DuckDB 2.0, an empty insert followed
        # by a large one into the same table in one transaction leaves wrong min/max
        # statistics, and filtered reads then skip every row (tests/test_bulk.py holds this).
        row = con.execute("SELECT count(*) FROM folding").fetchone()
        if row and row[0]:
            con.execute("DELETE FROM orders_snapshot WHERE order_id IN (SELECT order_id FROM folding)")
            con.execute("INSERT INTO orders_snapshot SELECT * FROM folding")
            con.execute("UPDATE projection_state SET folded_seq = (SELECT coalesce(max(seq), 0) FROM event_log)")
        con.execute("DROP TABLE folding")

    # ---- reading ---------------------------------------------------------------------

    def open_state(self) -> tuple[tuple[int, int, int], set[str]]:
        """``counters()`` and ``client_order_ids()``, the first reads of an opened file: a
        failure here means the file is corrupt (NOT_A_DATABASE), not that a command failed."""
        try:
            with self.lock:
                return self.counters(), self.client_order_ids()
        except StoreError as e:
            if isinstance(e.__cause__, duckdb.Error):
                raise open_failure(self.path, e.__cause__) from None
            raise

    def counters(self) -> tuple[int, int, int]:
        """(last seq, last order id, folded seq) -- 0 in a fresh database."""
        # The last order id comes from the orders (accepted creates), not the log: a refused
        # command on an unknown id (say 2**63 - 1) is logged with that id and must not move it.
        row = self.fetchone(
            "SELECT coalesce(max(seq), 0), (SELECT coalesce(max(order_id), 0) FROM orders), "
            "(SELECT folded_seq FROM projection_state) FROM event_log"
        )
        assert row is not None
        return int(row[0]), int(row[1]), int(row[2])

    def client_order_ids(self) -> set[str]:
        rows = self.fetchall("SELECT client_order_id FROM orders WHERE client_order_id IS NOT NULL")
        return {r[0] for r in rows}

    def load_order(self, order_id: int) -> Order | None:
        row = self.fetchone(f"SELECT {', '.join(ORDER_COLUMNS)} FROM orders WHERE order_id = ?", [order_id])
        return order_from_row(row) if row else None

    def load_orders(self, *, status: str | None = None, symbol: str | None = None) -> list[Order]:
        where, params = _filters(status=status, symbol=symbol)
        sql = f"SELECT {', '.join(ORDER_COLUMNS)} FROM orders {where} ORDER BY order_id"
        return [order_from_row(r) for r in self.fetchall(sql, params)]

    def load_events(self, order_id: int | None = None, *, accepted_only: bool = False) -> list[OrderEvent]:
        where, params = ("WHERE order_id = ?", [order_id]) if order_id is not None else ("", [])
        rows = self.fetchall(f"SELECT seq, order_id, payload FROM event_log {where} ORDER BY seq", params)
        events = [event_from_row(r) for r in rows]
        return [e for e in events if e.accepted] if accepted_only else events

    def stream(self, query: str, batch_rows: int = 50_000) -> Iterator[list[tuple[Any, ...]]]:
        """The rows of ``query`` in lists of at most ``batch_rows``, on a connection of its
        own (one snapshot; never the whole result in memory)."""
        con = self.cursor()
        try:
            result = con.execute(query)
            while batch := result.fetchmany(batch_rows):
                yield batch
        finally:
            con.close()

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        with self.lock:
            row: tuple[Any, ...] | None = self._guard(lambda: self._con.execute(sql, list(params)).fetchone())
            return row

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.lock:
            rows: list[tuple[Any, ...]] = self._guard(lambda: self._con.execute(sql, list(params)).fetchall())
            return rows

    def arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        """Run a query and return an Arrow table (exact decimals, no float rounding)."""
        with self.lock:
            return self._guard(lambda: self._con.sql(sql, params=list(params) or None).to_arrow_table())

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A new connection to this database, for a read beside the writer (it runs
        without ``self.lock``; close it when done)."""
        with self.lock:
            return self._guard(self._con.cursor)

    def close(self) -> None:
        """Checkpoint (a file opened for writing) and release the file; the connection is
        closed even when the checkpoint fails. Raises StoreError when it failed: the
        committed transactions are then still in the write-ahead log, replayed on the
        next open (DuckDB's own close would hide the failure and exit as if clean)."""
        with self.lock:
            try:
                if not self.read_only and self.path != MEMORY:
                    self._guard(lambda: self._con.execute("CHECKPOINT"))
            finally:
                self._con.close()

    def _guard(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except duckdb.Error as e:
            raise StoreError(f"{self.path}: {first_line(e)}") from e


def bulk_log(table: pa.Table) -> pa.Table:
    """The ``event_log`` rows (seq, order_id, payload) of a table of bulk create events,
    the payloads as this store writes them: for a store that is not DuckDB."""
    con = duckdb.connect(MEMORY)
    try:
        con.register("incoming_events", table)
        return con.sql(BULK_LOG_SELECT).to_arrow_table()
    finally:
        con.close()


def _bulk_json_value(name: str) -> str:
    """The SQL that writes one payload field of a bulk row as ``event_row`` writes it."""
    sql_type = PAYLOAD_TYPES[name]
    if sql_type == "TIMESTAMP":
        return f"strftime({name}, '%Y-%m-%d %H:%M:%S.%g')"
    if sql_type.startswith("DECIMAL"):
        return f"{name}::VARCHAR"
    return name


BULK_LOG_SELECT = (
    "SELECT seq, order_id, json_object("
    + ", ".join(f"'{name}', {_bulk_json_value(name)}" for name in PAYLOAD_TYPES)
    + ", 'request', json('{\"bulk\":true}'))::VARCHAR AS payload FROM incoming_events"
)
"""The event_log rows of the bulk create events registered as ``incoming_events``."""


def _filters(**filters: str | None) -> tuple[str, list[Any]]:
    conditions = [f"{name} = ?" for name, value in filters.items() if value is not None]
    params = [value for value in filters.values() if value is not None]
    return ("WHERE " + " AND ".join(conditions)) if conditions else "", params


def first_line(e: BaseException) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def _connect(path: str) -> duckdb.DuckDBPyConnection:
    """Open ``path`` for writing, refusing -- before DuckDB writes anything -- a file that
    is not a DuckDB database, one locked by another process, one from a newer schema, and
    one this process cannot write (``write_problem``)."""
    if path == MEMORY:
        return duckdb.connect(MEMORY)
    file = Path(path)
    if file.is_dir():
        raise StoreError(f"{path} is a directory: pass the path of a .duckdb file")
    if file.exists() and file.stat().st_size > 0:
        _check_header(file)
        # Inspect read-only first, so refusing a file never writes to it.
        probe = _open(path, read_only=True)
        try:
            _schema_version(probe, path)
        except duckdb.Error as e:
            raise open_failure(path, e) from None
        finally:
            probe.close()
    else:
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(
                f"{path}: cannot create its folder ({e.strerror}): pass a path in a writable folder"
            ) from None
    problem = write_problem(path)
    if problem is not None:
        raise StoreError(f"{path}: {problem}: pass a database in a writable folder, or open it read-only")
    return _open(path, read_only=False)


def write_problem(path: str) -> str | None:
    """Why this process cannot write the database ``path`` -- the folder refuses a new
    file (read-only, no permission, full), or the file or its write-ahead log is not
    writable -- or None. The folder is proven by a real write: a probe file is created
    there, written, fsync'ed and removed; the file and its log are only checked, never
    opened for writing. A folder not made yet is judged by its nearest existing parent."""
    file = Path(path)
    folder = file.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        return f"{folder} is not a folder"
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{file.name}.", suffix=".write-probe", dir=folder)
    except OSError as e:
        return f"cannot create a file in its folder {folder} ({e.strerror})"
    try:
        try:
            os.write(fd, b"\0")
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as e:
        return f"cannot write a file in its folder {folder} ({e.strerror})"
    finally:
        with suppress(OSError):
            os.unlink(probe)
    for target, what in ((file, "the file"), (Path(f"{path}.wal"), f"its write-ahead log {path}.wal")):
        if target.exists() and not os.access(target, os.W_OK):
            return f"{what} is not writable by this process (read-only, or no permission)"
    return None


def _connect_read_only(path: str) -> duckdb.DuckDBPyConnection:
    """Open ``path`` read-only: nothing is written to it or to its write-ahead log (whose
    commits DuckDB replays in memory). Refuses what ``_connect`` refuses, a missing file,
    and a file that holds no OMS book yet."""
    file = Path(path)
    if file.is_dir():
        raise StoreError(f"{path} is a directory: pass the path of a .duckdb file")
    if not file.exists():
        raise StoreError(f"{path}: no such database: check the path")
    if file.stat().st_size == 0:
        raise StoreError(f"{path} is empty: no OMS book has been written there yet")
    _check_header(file)
    wal = Path(f"{path}.wal").exists()
    con = _open(path, read_only=True, wal=wal)
    try:
        version = _schema_version(con, path)
    except duckdb.Error as e:
        con.close()
        raise open_failure(path, e) from None
    except BaseException:
        con.close()
        raise
    if version < _READS_FROM:
        con.close()
        if version == 0 and wal:  # the book is in a log DuckDB could not replay read-only
            raise _unreplayable_wal(path, "it holds no OMS book without the log")
        if version == 0:
            raise StoreError(f"{path} holds no OMS book yet (an empty DuckDB database)")
        raise StoreError(
            f"{path} has schema version {version}, older than this oms ({SCHEMA_VERSION}): a read cannot "
            "upgrade it; open it once for writing (any command that changes the book) to upgrade it"
        )
    return con


def _unreplayable_wal(path: str, why: str) -> StoreError:
    return StoreError(
        f"{path}: its write-ahead log {path}.wal, left by a writer that stopped without closing, "
        f"cannot be replayed by a read-only open ({why}); the files were left as they are: open it "
        "once for writing (a command that changes the book, or oms serve): DuckDB then replays "
        "what it can of the log into the file"
    )


def _check_header(file: Path) -> None:
    with file.open("rb") as f:
        header = f.read(12)
    if header[8:12] != b"DUCK":
        raise NotADatabase(
            f"{file} is not a DuckDB database: pass a new path (a fresh database is created) "
            "or the .duckdb file an OMS wrote"
        )


def _open(path: str, *, read_only: bool, wal: bool = False) -> duckdb.DuckDBPyConnection:
    try:
        return duckdb.connect(path, read_only=read_only)
    except duckdb.Error as e:
        failure = open_failure(path, e)
        if wal and read_only and not isinstance(failure, DatabaseLocked):
            raise _unreplayable_wal(path, first_line(e)[:160]) from None
        raise failure from None


# DuckDB's one message for a lock held by another process; it comes as an IOException.
_LOCK_CONFLICT = re.compile(r"^IO Error: Could not set lock on file ")
_NOT_DUCKDB = re.compile(r"^IO Error: The file .* exists, but it is not a valid DuckDB database file")


def open_failure(path: str, e: duckdb.Error) -> StoreError:
    """What a DuckDB failure while opening ``path`` (or reading it for the first time)
    means, classified by the exception's type: an IOException is the file system's
    answer (a lock held by another process, a file that is not DuckDB's, no permission);
    any other DuckDB error while opening is the content itself (a corrupt file)."""
    text = first_line(e)
    if isinstance(e, duckdb.IOException):
        if _LOCK_CONFLICT.match(text):
            match = _LOCK_PID.search(text)
            holder = f"process {match.group(1)}" if match else "another process"
            return DatabaseLocked(
                f"{path} is in use by {holder}: stop it, or connect to the server it runs "
                "(oms.connect(url)), or open another file"
            )
        if _NOT_DUCKDB.match(text):
            return NotADatabase(f"{path} is corrupt or not a DuckDB file: pass the .duckdb file an OMS wrote")
        return StoreError(f"{path}: {text}")
    return NotADatabase(
        f"{path} is corrupt or not a DuckDB file ({text[:160]}): restore it from a backup, or pass a new path"
    )


def _schema_version(con: duckdb.DuckDBPyConnection, path: str) -> int:
    """The file's schema version; 0 for an empty database. Refuses foreign and newer files."""
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    version = schema_version(
        path, tables, lambda sql: con.execute(sql).fetchone(),
        newest=SCHEMA_VERSION, store="DuckDB", thing="file", fresh="path",
    )  # fmt: skip
    return version or 0
