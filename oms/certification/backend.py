"""A managed system's backend database, read directly for the optional ``sql`` cases.

Adapter layer (DuckDB, psycopg). Which database is the system's follows from its start
command (``backend_of``): a PostgreSQL database when a ``postgresql://`` URL is one of its
words, else the ``{db}`` DuckDB file the runner gave it. A registry keyed by URL scheme
picks the reader. Either way the case's query -- DuckDB's dialect, the reference schema
-- runs on DuckDB:

- ``DuckFile``: the file itself, read only, once the server has stopped (a DuckDB file
  has one writer), with no extension ever downloaded or loaded;
- ``PgDatabase``: a copy of the PostgreSQL database's tables and views (those of its
  current schema), taken in one read-only snapshot while the server runs, each column
  with the DuckDB type of its PostgreSQL type -- NUMERIC(16,4) is DECIMAL(16,4), a
  NUMERIC without a scale is no DECIMAL at all -- so a type check reads what PostgreSQL
  holds, and the values come across as PostgreSQL's own text.

Whatever stops the read (no file, not DuckDB, server unreachable, no reference schema)
is ``NotOffered`` with the reason: the case is NOT APPLICABLE, never FAIL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from oms.certification.values import NotOffered

NO_EXTENSIONS: dict[str, str | bool | int | float | list[str]] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}
"""Reading a system's database never downloads or loads a DuckDB extension."""
CONNECT_TIMEOUT_S = 10


class Backend(Protocol):
    """A system's backend database, as the ``sql`` step reads it."""

    needs_server_down: bool
    """Whether the server must stop before the read (a DuckDB file has one writer)."""

    def query(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]: ...


@dataclass
class DuckFile:
    path: str
    needs_server_down = True

    def query(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        import duckdb

        if not Path(self.path).is_file():
            raise NotOffered("the system offers no backend database: it wrote no database file")
        with open(self.path, "rb") as f:
            if f.read(12)[8:12] != b"DUCK":
                raise NotOffered("the system's database file is not a DuckDB file")
        try:
            con = duckdb.connect(self.path, read_only=True, config=NO_EXTENSIONS)
        except duckdb.Error as e:
            raise NotOffered(f"the system's database file is not a DuckDB database this pack can read: {e}") from None
        try:
            return _run(con, sql, params)
        finally:
            con.close()


# PostgreSQL's data_type (information_schema.columns) -> the DuckDB type of the copy.
_PG_TYPES: dict[str, str] = {
    "bigint": "BIGINT", "integer": "INTEGER", "smallint": "SMALLINT", "boolean": "BOOLEAN",
    "character varying": "VARCHAR", "text": "VARCHAR", "character": "VARCHAR",
    "double precision": "DOUBLE", "real": "FLOAT", "date": "DATE",
    "timestamp without time zone": "TIMESTAMP", "timestamp with time zone": "TIMESTAMPTZ",
    "json": "VARCHAR", "jsonb": "VARCHAR", "uuid": "UUID",
}  # fmt: skip


def duck_type(data_type: str, precision: int | None, scale: int | None) -> str:
    """The DuckDB type of a PostgreSQL column (VARCHAR for what DuckDB has no match for)."""
    if data_type == "numeric":
        if precision is not None and scale is not None and precision <= 38:
            return f"DECIMAL({precision},{scale})"
        return "VARCHAR"  # no fixed scale: not the reference schema's exact price
    return _PG_TYPES.get(data_type, "VARCHAR")


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass
class PgDatabase:
    url: str
    needs_server_down = False

    def query(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        import duckdb

        copy = duckdb.connect(":memory:", config=NO_EXTENSIONS)
        try:
            self._copy_into(copy)
            return _run(copy, sql, params)
        finally:
            copy.close()

    def _copy_into(self, copy: Any) -> None:
        import duckdb
        import psycopg
        import pyarrow as pa

        from oms.store import shown
        from oms.store.pg import connect_problem

        try:
            conn = psycopg.connect(self.url, connect_timeout=CONNECT_TIMEOUT_S, application_name="oms-certify")
        except psycopg.Error as e:
            problem = connect_problem(e)
            raise NotOffered(f"cannot read the system's PostgreSQL database {shown(self.url)}: {problem}") from None
        try:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")  # one snapshot, no writes
            conn.execute("SET LOCAL DateStyle = ISO; SET LOCAL TimeZone = 'UTC'")  # text that DuckDB casts back
            columns = conn.execute(
                "SELECT table_name, column_name, data_type, numeric_precision, numeric_scale "
                "FROM information_schema.columns WHERE table_schema = current_schema() "
                "ORDER BY table_name, ordinal_position"
            ).fetchall()
            tables: dict[str, list[tuple[str, str]]] = {}
            for table, column, data_type, precision, scale in columns:
                tables.setdefault(table, []).append((column, duck_type(data_type, precision, scale)))
            for table, cols in tables.items():
                texts = ", ".join(f"{_quoted(c)}::text" for c, _ in cols)
                rows = conn.execute(f"SELECT {texts} FROM {_quoted(table)}".encode()).fetchall()
                names = [c for c, _ in cols]
                as_text = pa.table({n: pa.array([r[i] for r in rows], pa.string()) for i, n in enumerate(names)})
                copy.register("pg_rows", as_text)
                typed = ", ".join(f"CAST({_quoted(c)} AS {t}) AS {_quoted(c)}" for c, t in cols)
                copy.execute(f"CREATE TABLE {_quoted(table)} AS SELECT {typed} FROM pg_rows")
                copy.unregister("pg_rows")
        except psycopg.Error as e:
            raise NotOffered(f"cannot read the system's PostgreSQL database {shown(self.url)}: {e}") from None
        except duckdb.Error as e:  # a value or a name DuckDB cannot take as the reference schema's
            raise NotOffered(f"the system's PostgreSQL database does not copy into the reference schema: {e}") from None
        finally:
            conn.close()


def _run(con: Any, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    import duckdb

    try:
        return con.execute(sql, list(params)).fetchall()  # type: ignore[no-any-return]
    except duckdb.CatalogException as e:
        raise NotOffered(f"the system's database does not have the reference schema: {e}") from None


READERS: dict[str, Callable[[str], Backend]] = {"postgresql": PgDatabase, "postgres": PgDatabase}
"""A database URL's scheme -> its reader."""


def backend_of(argv: Sequence[str], db_file: str) -> Backend:
    """The backend database a system started with ``argv`` keeps: the first word that
    is a database URL of a known scheme (alone, or as ``--opt=URL``), else ``db_file``."""
    from oms.store.base import normalized, scheme

    for word in argv:
        value = word.split("=", 1)[1] if word.startswith("-") and "=" in word else word
        if scheme(value) in READERS:
            return READERS[scheme(value)](normalized(value))
    return DuckFile(db_file)
