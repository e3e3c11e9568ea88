"""The pack's direct read of a system's backend database (oms.certification.backend), on a
real PostgreSQL server and real DuckDB files: which database a start command names, the
copy's types and values as PostgreSQL holds them, and NOT APPLICABLE reasons."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

import oms
from oms.certification.backend import DuckFile, PgDatabase, backend_of, duck_type
from oms.certification.targets import make_target
from oms.certification.values import NotOffered
from oms.store.pgcluster import TempCluster


def test_the_backend_is_the_postgresql_url_of_the_command_else_the_db_file() -> None:
    url = "postgresql://u:p@127.0.0.1:5/book"
    assert backend_of(["oms", "serve", "--db", url, "--port", "1"], "/x.duckdb") == PgDatabase(url)
    assert backend_of(["oms", "serve", f"--db={url}"], "/x.duckdb") == PgDatabase(url)
    assert backend_of(["srv", "postgres://h/b"], "/x.duckdb") == PgDatabase("postgres://h/b")
    assert backend_of(["srv", "--db", "POSTGRESQL://h/b"], "/x.duckdb") == PgDatabase("postgresql://h/b")
    assert backend_of(["oms", "serve", "--db", "/x.duckdb", "--url", "http://h"], "/x.duckdb") == DuckFile("/x.duckdb")


@pytest.mark.parametrize(
    ("pg", "duck"),
    [
        (("numeric", 16, 4), "DECIMAL(16,4)"),
        (("numeric", None, None), "VARCHAR"),  # no fixed scale: not an exact price of the reference schema
        (("timestamp without time zone", None, None), "TIMESTAMP"),
        (("bigint", 64, 0), "BIGINT"),
        (("jsonb", None, None), "VARCHAR"),
        (("point", None, None), "VARCHAR"),
    ],
)
def test_postgresql_types_map_to_duckdb_types(pg: tuple[str, int | None, int | None], duck: str) -> None:
    assert duck_type(*pg) == duck


def _book(url: str) -> int:
    with oms.open(url, clock=oms.SimulatedClock()) as gw:
        order = gw.create(symbol="DB", side="BUY", quantity=3, price="1234.5678")
        gw.execute(order.order_id, price="1")
        with pytest.raises(oms.InvalidTransition):
            gw.cancel(order.order_id)
        return order.order_id


def test_a_postgresql_book_reads_as_the_reference_schema_with_its_own_types_and_values(pg_url: str) -> None:
    order_id = _book(pg_url)
    backend = PgDatabase(pg_url)
    assert backend.query("SELECT typeof(price), typeof(created_at) FROM orders", []) == [("DECIMAL(16,4)", "TIMESTAMP")]
    assert backend.query("SELECT status, price, executed_price FROM orders WHERE order_id = ?", [order_id]) == [
        ("EXECUTED", Decimal("1234.5678"), Decimal("1.0000"))
    ]
    assert backend.query("SELECT action, accepted, reason FROM order_events ORDER BY seq", []) == [
        ("create", True, None), ("execute", True, None), ("cancel", False, "INVALID_TRANSITION"),
    ]  # fmt: skip
    assert backend.query("SELECT max(version) >= 1 FROM oms_schema", []) == [(True,)]


def test_a_column_of_another_type_in_postgresql_is_that_type_in_the_copy(pg_url: str) -> None:
    _book(pg_url)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE orders ALTER COLUMN price TYPE DOUBLE PRECISION")
    assert PgDatabase(pg_url).query("SELECT typeof(price) FROM orders", []) == [("DOUBLE",)]


def test_what_stops_the_read_is_not_applicable_with_the_reason(pg_url: str, tmp_path: Path) -> None:
    with pytest.raises(NotOffered, match="does not have the reference schema"):
        PgDatabase(pg_url).query("SELECT count(*) FROM orders", [])  # an empty database
    down = pg_url.rsplit("@", 1)[0] + "@127.0.0.1:1/none"
    with pytest.raises(NotOffered, match="cannot reach the PostgreSQL server") as refused:
        PgDatabase(down).query("SELECT 1", [])
    assert "oms-test-password" not in str(refused.value)  # the password is never shown
    with pytest.raises(NotOffered, match="wrote no database file"):
        DuckFile(str(tmp_path / "none.duckdb")).query("SELECT 1", [])
    (tmp_path / "text.duckdb").write_text("not a database")
    with pytest.raises(NotOffered, match="not a DuckDB file"):
        DuckFile(str(tmp_path / "text.duckdb")).query("SELECT 1", [])


def test_the_read_writes_nothing(pg_url: str) -> None:
    _book(pg_url)
    with pytest.raises(NotOffered):  # the copy is DuckDB's: a write there never reaches PostgreSQL
        PgDatabase(pg_url).query("DELETE FROM orders_missing", [])
    assert PgDatabase(pg_url).query("DELETE FROM orders", []) == [(1,)]
    with oms.open(pg_url) as gw:
        assert len(gw.orders()) == 1


def test_certifying_a_postgresql_book_in_use_keeps_the_system_clock(pg_url: str, pg_cluster: TempCluster) -> None:
    """The simulated clock (ids from 1, dates of January) is for a book that has nothing
    yet; a team's book in use keeps real time, or its log would go back in time."""
    with oms.open(pg_url) as gw:
        gw.create(symbol="LIVE", side="BUY", quantity=1, price="1")
    in_use = make_target(pg_url)
    empty = make_target(pg_cluster.create_database(f"empty_{os.getpid()}"))
    try:
        assert (in_use.fresh, in_use.simulated) == (False, False)
        assert "system clock" in in_use.description and "***" in in_use.description
        assert (empty.fresh, empty.simulated) == (True, True)
    finally:
        in_use.close()
        empty.close()


def test_the_copy_reads_timestamps_whatever_the_servers_datestyle_and_refuses_what_duckdb_cannot_hold(
    pg_url: str,
) -> None:
    order_id = _book(pg_url)
    database = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE {database} SET DateStyle = 'SQL, DMY'".encode())
        conn.execute(f"ALTER DATABASE {database} SET TimeZone = 'Asia/Kolkata'".encode())
    (created,) = PgDatabase(pg_url).query("SELECT created_at FROM orders WHERE order_id = ?", [order_id])[0]
    with oms.open(pg_url) as gw:
        assert created == gw.get(order_id).created_at.replace(tzinfo=None)  # the UTC time the book holds
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE orders ALTER COLUMN price TYPE NUMERIC(16, 4)")
        conn.execute("CREATE TABLE prices (p NUMERIC(16, 4))")
        conn.execute("INSERT INTO prices VALUES ('NaN')")  # PostgreSQL's NaN: no DECIMAL holds it
    with pytest.raises(NotOffered, match="does not copy into the reference schema"):
        PgDatabase(pg_url).query("SELECT 1", [])
