"""Read-only SQL over the book: what ``views.sql`` runs, embedded and behind ``POST /sql``.

Adapter layer (imports duckdb). A query is judged by DuckDB's own parser before anything
runs, and refused (SQL_REFUSED, nothing run, nothing changed) unless it is

- exactly one statement (``duckdb.extract_statements``), of type SELECT -- so DELETE,
  DROP, ATTACH, COPY, INSTALL/LOAD, PRAGMA, SET, CALL, EXPLAIN, a second statement after
  ``;`` are refused by their statement type;
- reading only the OMS tables and views (``READABLE``), CTEs it defines, and the catalog
  (``information_schema``), through no table function but ``SAFE_TABLE_FUNCTIONS`` and no
  function in ``REFUSED_FUNCTIONS``: its parse tree (``json_serialize_sql``) is walked,
  so ``read_csv('/etc/passwd')``, ``FROM 'data.parquet'``, ``glob(...)``, ``query(...)``
  and other ways to reach files, the network or other SQL are refused.

It then runs on a connection of its own, in a READ ONLY transaction that is rolled back,
with the database's external access switched off (``enable_external_access = false``: no
file, network or extension, whatever the parse tree hid), and is interrupted
(``connection.interrupt()``) once it has run ``time_limit`` seconds (SQL_TIMEOUT). A
result above ``max_rows`` rows is refused (SQL_TOO_LARGE) rather than cut. Other DuckDB
failures (a syntax error, an unknown column) are SQL_ERROR.

Parameters are ``?`` values: null, booleans, integers, decimals, floats or strings; a
float is bound as the exact decimal of its shortest repr (what it becomes in JSON), so a
query binds the same types embedded and over HTTP.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import duckdb

from oms.errors import SqlError, SqlRefused, SqlTimeout, SqlTooLarge, ValidationError

if TYPE_CHECKING:
    import pyarrow as pa

TIME_LIMIT_S = 5.0
"""Seconds a query may run before it is interrupted."""
MAX_ROWS = 2_000_000
"""Rows a result may have (an aggregate or a LIMIT for more)."""
MAX_QUERY_CHARS = 20_000

READABLE = frozenset({"orders", "order_events", "event_log", "orders_snapshot", "projection_state", "oms_schema"})
"""The OMS schema's tables and views, the only relations a query may name."""
CATALOG_SCHEMAS = frozenset({"information_schema", "pg_catalog"})
SAFE_TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest"})
"""Table functions that compute rows and touch nothing."""
REFUSED_FUNCTIONS = frozenset(
    {"nextval", "currval", "setval", "getenv", "query", "query_table", "json_execute_serialized_sql", "checkpoint",
     "force_checkpoint", "sqlite_scan", "postgres_scan", "mysql_scan", "read_text", "read_blob"}
)  # fmt: skip
"""Functions with side effects or that run or reach something else (also refused as scalars)."""
_BATCH_ROWS = 100_000


def check(query: str, con: duckdb.DuckDBPyConnection | None = None) -> None:
    """Refuse (SQL_REFUSED) anything but one SELECT over the OMS tables; a query DuckDB
    cannot parse is SQL_ERROR. Runs nothing (``con``, if given, only parses it)."""
    if not isinstance(query, str) or not query.strip():
        raise SqlRefused("the query is empty: send one SELECT statement")
    if len(query) > MAX_QUERY_CHARS:
        raise SqlRefused(f"the query has {len(query):,} characters; at most {MAX_QUERY_CHARS:,} are accepted")
    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error as e:
        raise SqlError(_first_line(e)) from None
    if len(statements) != 1:
        raise SqlRefused(f"send exactly one statement, got {len(statements)}: only a single SELECT is accepted")
    kind = statements[0].type
    if kind is not duckdb.StatementType.SELECT:
        raise SqlRefused(f"only a single SELECT is accepted, got a {kind.name} statement (the book is read-only here)")
    parser = con or duckdb.connect(":memory:")  # only the parser's serializer runs here
    try:
        row = parser.execute("SELECT json_serialize_sql(?::VARCHAR)", [query]).fetchall()[0][0]
    except duckdb.Error as e:
        raise SqlError(_first_line(e)) from None
    finally:
        if con is None:
            parser.close()
    tree = json.loads(row)
    if tree.get("error"):
        raise SqlRefused(f"only a plain SELECT is accepted: {tree.get('error_message', 'it cannot be read')}")
    ctes: set[str] = set()
    _collect_ctes(tree, ctes)
    _walk(tree, ctes)


def _collect_ctes(node: Any, out: set[str]) -> None:
    if isinstance(node, dict):
        cte_map = node.get("cte_map")
        if isinstance(cte_map, dict):
            out.update(str(entry.get("key", "")).lower() for entry in cte_map.get("map", []))
        for value in node.values():
            _collect_ctes(value, out)
    elif isinstance(node, list):
        for value in node:
            _collect_ctes(value, out)


def _walk(node: Any, ctes: set[str]) -> None:
    if isinstance(node, list):
        for value in node:
            _walk(value, ctes)
        return
    if not isinstance(node, dict):
        return
    kind = node.get("type")
    if kind == "BASE_TABLE":
        _check_table(node, ctes)
    elif kind == "TABLE_FUNCTION":
        function = node.get("function") or {}
        name = str(function.get("function_name", "")).lower()
        if name not in SAFE_TABLE_FUNCTIONS:
            raise SqlRefused(
                f"the table function {name}() is refused: a query reads the book's tables "
                f"({', '.join(sorted(READABLE))}), never files, the network or other databases"
            )
    if node.get("class") == "FUNCTION":
        name = str(node.get("function_name", "")).lower()
        if name in REFUSED_FUNCTIONS or node.get("catalog") or node.get("schema") not in ("", None, "main"):
            raise SqlRefused(f"the function {name}() is refused: it changes or reaches something beyond the book")
    for value in node.values():
        _walk(value, ctes)


def _check_table(node: dict[str, Any], ctes: set[str]) -> None:
    name = str(node.get("table_name", ""))
    schema = str(node.get("schema_name", "")).lower()
    catalog = str(node.get("catalog_name", ""))
    if node.get("at_clause"):
        raise SqlRefused(f"{name} AT (...) is refused: a query reads the book as it is now")
    if catalog:
        raise SqlRefused(f"{catalog}.{name} is refused: a query reads this book's database only")
    if schema in CATALOG_SCHEMAS:
        return
    if schema in ("", "main") and (name.lower() in READABLE or (not schema and name.lower() in ctes)):
        return
    raise SqlRefused(
        f"{name!r} is not a table of the book: a query reads {', '.join(sorted(READABLE))} "
        "(never files, URLs or other databases)"
    )


def bind_params(params: Sequence[Any] | None) -> list[Any]:
    """The parameters as bound: refuses (VALIDATION_ERROR, naming ``params[i]``) anything
    but null, a boolean, a number or a string; a float becomes its exact decimal."""
    if params is None:
        return []
    if isinstance(params, (str, bytes)) or not isinstance(params, Sequence):
        raise ValidationError("must be a list of values", "params")
    out, errors = [], []
    for i, value in enumerate(params):
        if value is None or isinstance(value, (bool, int, str, Decimal)):
            if isinstance(value, Decimal) and not value.is_finite():
                errors.append({"field": f"params[{i}]", "message": "must be a finite number"})
            out.append(value)
        elif isinstance(value, float):
            if not math.isfinite(value):
                errors.append({"field": f"params[{i}]", "message": "must be a finite number"})
            out.append(Decimal(repr(value)))
        else:
            errors.append({"field": f"params[{i}]", "message": "must be null, a boolean, a number or a string"})
    if errors:
        raise ValidationError(errors)
    return out


def run(
    connect: Callable[[], duckdb.DuckDBPyConnection],
    query: str,
    params: Sequence[Any] | None = None,
    *,
    time_limit: float = TIME_LIMIT_S,
    max_rows: int = MAX_ROWS,
) -> pa.Table:
    """``query`` (checked first) on a fresh connection from ``connect()`` (closed after),
    read-only, as Arrow. Raises SQL_REFUSED, SQL_ERROR, SQL_TIMEOUT, SQL_TOO_LARGE or VALIDATION_ERROR."""
    import pyarrow as pa

    values = bind_params(params)
    con = connect()
    fired = threading.Event()

    def interrupt() -> None:
        fired.set()
        con.interrupt()

    timer = threading.Timer(time_limit, interrupt)
    timer.daemon = True
    try:
        check(query, con)
        # Global and one-way: no file, network or extension for this database from now on.
        con.execute("SET enable_external_access = false")
        con.execute("BEGIN TRANSACTION READ ONLY")
        timer.start()
        try:
            reader = con.sql(query, params=values or None).to_arrow_reader(_BATCH_ROWS)
            batches, rows = [], 0
            for batch in reader:
                rows += batch.num_rows
                if rows > max_rows:
                    raise SqlTooLarge(
                        f"the result has more than {max_rows:,} rows: aggregate, or add a LIMIT and page with it"
                    )
                batches.append(batch)
            return pa.Table.from_batches(batches, schema=reader.schema)
        except duckdb.Error as e:
            if fired.is_set():
                raise SqlTimeout(f"the query ran longer than {time_limit:g} s and was cancelled") from None
            raise SqlError(_first_line(e)) from None
    finally:
        timer.cancel()
        con.close()  # the read-only transaction ends with the connection: nothing to keep


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:500] if text else type(e).__name__
