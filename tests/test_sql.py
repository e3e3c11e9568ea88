"""Read-only SQL over the book, on both transports: ``views.sql`` embedded and through a
real server's ``POST /sql`` give the same frames; anything that could write or reach the
file system is refused (SQL_REFUSED) and changes nothing; a long query is cancelled
(SQL_TIMEOUT); the token rule holds; the backend check runs three ways on a server."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from test_api_contract import assert_canonical_error

import oms
from conftest import TestClient, ThreadedServer
from oms import notebook, views
from oms.api import create_app
from oms.client import RemoteGateway
from oms.engine import Engine
from oms.errors import SqlError, SqlRefused, SqlTimeout, SqlTooLarge, ValidationError
from oms.gateway import SqlCapable


@pytest.fixture
def book(gw: Engine) -> Engine:
    notebook.seed_demo_book(gw)
    with pytest.raises(oms.InvalidTransition):
        gw.cancel(4)
    return gw


@pytest.fixture
def remote(book: Engine) -> Iterator[RemoteGateway]:
    with ThreadedServer(book) as server, oms.connect(server.url) as gateway:
        yield gateway


QUERIES = [
    ("SELECT * FROM orders ORDER BY order_id", []),
    ("SELECT seq, order_id, action, accepted, reason, event_at FROM order_events ORDER BY seq", []),
    ("SELECT symbol, sum(quantity * price) AS notional FROM orders WHERE price > ? GROUP BY symbol ORDER BY 1", [1000]),
    ("SELECT ? AS a, ? AS b, ? AS c, ? AS d, ? AS e", [None, True, 7, "x", Decimal("1.25")]),
    ("WITH n AS (SELECT * FROM orders WHERE status = ?) SELECT count(*) AS n FROM n", ["NEW"]),
    ("SELECT count(*) AS n FROM range(10)", []),
    ("DESCRIBE orders", []),
]


@pytest.mark.parametrize(("query", "params"), QUERIES, ids=[q[:40] for q, _ in QUERIES])
def test_sql_gives_the_same_frame_embedded_and_through_the_server(
    book: Engine, remote: RemoteGateway, query: str, params: list[object]
) -> None:
    here, there = views.sql(book, query, params), views.sql(remote, query, params)
    assert here.equals(there) and list(here.dtypes) == list(there.dtypes)
    assert len(here) > 0


def test_both_gateways_offer_sql_as_a_capability(book: Engine, remote: RemoteGateway) -> None:
    assert isinstance(book, SqlCapable) and isinstance(remote, SqlCapable)
    frame = views.sql(remote, "SELECT price FROM orders WHERE order_id = ?", [1])
    assert frame["price"].iloc[0] == Decimal("1500.25")  # exact, not a float


REFUSED = [
    "DELETE FROM event_log",
    "DROP TABLE event_log",
    "UPDATE event_log SET payload = '{}'",
    "INSERT INTO event_log VALUES (99, 1, '{}')",
    "CREATE TABLE x AS SELECT 1",
    "ATTACH '/tmp/oms-sql-attack.duckdb' AS x",
    "COPY (SELECT * FROM orders) TO '/tmp/oms-sql-attack.csv'",
    "COPY event_log FROM '/etc/hostname'",
    "EXPORT DATABASE '/tmp/oms-sql-attack'",
    "INSTALL httpfs",
    "LOAD httpfs",
    "PRAGMA database_list",
    "SET threads = 8",
    "SET enable_external_access = true",
    "CALL checkpoint()",
    "CHECKPOINT",
    "BEGIN TRANSACTION",
    "EXPLAIN ANALYZE SELECT 1",
    "SELECT 1; DELETE FROM event_log",
    "SELECT 1; SELECT 2",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_csv_auto('/etc/passwd')",
    "SELECT * FROM read_parquet('/tmp/x.parquet')",
    "SELECT * FROM read_json('/etc/hostname')",
    "SELECT * FROM read_text('/etc/hostname')",
    "SELECT * FROM glob('/etc/*')",
    "SELECT * FROM '/etc/passwd'",
    "SELECT * FROM 'https://example.com/data.csv'",
    "SELECT * FROM orders WHERE symbol IN (SELECT * FROM read_csv('/etc/passwd'))",
    "WITH x AS (SELECT * FROM glob('/*')) SELECT * FROM x",
    "SELECT * FROM query('SELECT 1')",
    "SELECT * FROM checkpoint()",
    "SELECT * FROM duckdb_settings()",
    "SELECT nextval('s')",
    "SELECT * FROM other.main.orders",
    "",
]


@pytest.mark.parametrize("query", REFUSED)
def test_anything_but_one_select_over_the_book_is_refused_on_both_transports_and_changes_nothing(
    book: Engine, remote: RemoteGateway, query: str
) -> None:
    before = (book.orders(), book.events())
    for gateway in (book, remote):
        with pytest.raises(SqlRefused) as refused:
            views.sql(gateway, query)
        assert refused.value.code == "SQL_REFUSED" and refused.value.message
    assert (book.orders(), book.events()) == before
    assert not Path("/tmp/oms-sql-attack.csv").exists() and not Path("/tmp/oms-sql-attack").exists()
    assert book.create(symbol="A", side="BUY", quantity=1, price=1).order_id == 7  # the engine still writes


def test_a_refusal_over_http_has_the_one_error_shape(book: Engine) -> None:
    with TestClient(create_app(book)) as client:
        response = client.post("/sql", json={"sql": "DROP TABLE event_log"})
        assert "DROP" in assert_canonical_error(response, 400, "SQL_REFUSED")["message"]
        assert_canonical_error(client.post("/sql", json={"sql": "SELEC 1"}), 400, "SQL_ERROR")
        assert_canonical_error(client.post("/sql", json={"sql": "SELECT nope FROM orders"}), 400, "SQL_ERROR")
        for body, fields in (({}, ["sql"]), ({"sql": 1}, ["sql"]), ({"sql": "SELECT 1", "params": 3}, ["params"]),
                             ({"sql": "SELECT 1", "x": 1}, ["x"]),
                             ({"sql": "SELECT ?", "params": [[1]]}, ["params[0]"])):  # fmt: skip
            detail = assert_canonical_error(client.post("/sql", json=body), 422, "VALIDATION_ERROR")
            assert [e["field"] for e in detail["errors"]] == fields, body
        response = client.post("/sql", content=b'{"sql": "SELECT 1"}', headers={"content-type": "text/plain"})
        assert_canonical_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_the_json_answer_has_columns_types_and_exact_rows(book: Engine) -> None:
    with TestClient(create_app(book)) as client:
        response = client.post(
            "/sql",
            json={
                "sql": "SELECT order_id, price, created_at FROM orders WHERE order_id < ? ORDER BY 1",
                "params": [3],
            },
        )
    assert response.status_code == 200, response.text
    assert '"rows": [[1, 1500.25, "2026-01-05T09:15:00"], [2, 3885, ' in response.text
    body = response.json()
    assert body["columns"] == ["order_id", "price", "created_at"]
    assert body["types"] == ["int64", "decimal128(16, 4)", "timestamp[us]"]


def test_a_query_past_the_time_limit_is_cancelled_and_the_book_goes_on(book: Engine, remote: RemoteGateway) -> None:
    book.sql_time_limit = 0.3
    slow = "SELECT sum(a.range * b.range) FROM range(100000000) a, range(100000) b"
    for gateway in (book, remote):
        with pytest.raises(SqlTimeout, match=r"longer than 0\.3 s"):
            views.sql(gateway, slow)
    assert views.sql(remote, "SELECT count(*) AS n FROM orders")["n"].tolist() == [6]
    assert remote.create(symbol="A", side="BUY", quantity=1, price=1).order_id == 7


def test_a_result_too_large_is_refused_not_cut(book: Engine) -> None:
    with pytest.raises(SqlTooLarge):
        book.sql_arrow("SELECT * FROM range(3000000)")
    with pytest.raises(ValidationError):
        book.sql_arrow("SELECT ?", [object()])
    with pytest.raises(SqlError):
        book.sql_arrow("SELECT * FROM orders WHERE")


def test_sql_needs_the_token_when_the_server_has_one(book: Engine) -> None:
    with ThreadedServer(book, token="s3cret") as server:
        response = httpx.post(server.url + "/sql", json={"sql": "SELECT 1"})
        assert_canonical_error(response, 401, "UNAUTHORIZED")
        with oms.connect(server.url, token="s3cret") as gateway:
            assert views.sql(gateway, "SELECT count(*) AS n FROM orders")["n"].tolist() == [6]


def test_the_backend_check_and_the_notebook_sql_work_on_a_served_book(book: Engine, remote: RemoteGateway) -> None:
    check = notebook.backend_check(remote)
    assert check["source"].tolist() == ["gateway (get/orders)", "SQL (orders table)", "replay (order_events)"]
    assert check["matches_gateway"].tolist() == [True, True, True] and check["orders"].tolist() == [6, 6, 6]
    assert check.equals(views.verify_backend(book))
    query = "SELECT status, count(*) AS orders FROM orders GROUP BY status ORDER BY status"
    assert notebook.sql(remote, query).equals(notebook.sql(book, query))
    assert views.summary(remote, "symbol").equals(views.summary(book, "symbol"))


def test_sql_works_on_a_real_oms_serve_with_a_file(tmp_path: Path, serve) -> None:  # type: ignore[no-untyped-def]
    server = serve(tmp_path / "book.duckdb", token="t0ken")
    with server.connect() as gateway:
        notebook.seed_demo_book(gateway)
        assert views.verify_backend(gateway)["matches_gateway"].all()
        with pytest.raises(SqlRefused):
            views.sql(gateway, "COPY (SELECT 1) TO 'leak.csv'")
    assert not (tmp_path / "leak.csv").exists() and not Path("leak.csv").exists()
