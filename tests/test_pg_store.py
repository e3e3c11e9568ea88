"""The PostgreSQL store on a real server: the same rules as DuckDB's (schema version, an
append-only log with refusals, exact decimals, UTC milliseconds), clear errors, several
writers on one book, a server restart, and DuckDB's analytics and Parquet export over it."""

from __future__ import annotations

import contextlib
import os
import resource
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
import pyarrow.parquet as pq
import pytest

import oms
from oms import views
from oms.store import SCHEMA_VERSION, pg
from oms.store.pgcluster import TempCluster


def session(gw: oms.engine.Engine) -> None:
    """The same commands on any book: accepted and refused, both order types, a client id."""
    a = gw.create(symbol="INFY", side="BUY", quantity=100, price="999999999999.9999", client_order_id="c-1")
    b = gw.create(symbol="TCS", side="SELL", quantity=7, order_type="MARKET")
    c = gw.create(symbol="INFY", side="SELL", quantity=3, price="0.0001")
    gw.modify(a.order_id, price="1490.0001", quantity=50)
    for refused in (lambda: gw.cancel(a.order_id), lambda: gw.execute(b.order_id), lambda: gw.create(
            symbol="X", side="BUY", quantity=1, price="1", client_order_id="c-1")):  # fmt: skip
        with pytest.raises(oms.OMSError):
            refused()
    gw.execute(b.order_id, price="2500.5")
    gw.cancel(c.order_id)


def test_a_postgresql_book_has_the_schema_version_numeric_prices_and_millisecond_utc_times(pg_url: str) -> None:
    with oms.open(pg_url, clock=oms.SimulatedClock()) as gw:
        session(gw)
        assert gw.get(1).price == Decimal("1490.0001") and gw.get(3).price == Decimal("0.0001")
    with psycopg.connect(pg_url) as con:
        assert con.execute("SELECT max(version) FROM oms_schema").fetchone() == (SCHEMA_VERSION,)
        types = dict(con.execute(
            "SELECT column_name, format_type(atttypid, atttypmod) FROM information_schema.columns "
            "JOIN pg_attribute ON attrelid = 'orders'::regclass AND attname = column_name WHERE table_name = 'orders'"
        ).fetchall())  # fmt: skip
        assert types["price"] == types["executed_price"] == "numeric(16,4)"
        assert types["created_at"] == types["updated_at"] == "timestamp(3) without time zone"
        assert con.execute("SELECT price FROM orders WHERE order_id = 1").fetchone() == (Decimal("1490.0001"),)


def test_the_log_records_refusals_and_refuses_to_be_changed(pg_url: str) -> None:
    with oms.open(pg_url, clock=oms.SimulatedClock()) as gw:
        session(gw)
        refused = [(e.action.value, e.reason) for e in gw.events() if not e.accepted]
        assert refused == [("cancel", "INVALID_TRANSITION"), ("execute", "VALIDATION_ERROR"),
                           ("create", "DUPLICATE_CLIENT_ORDER_ID")]  # fmt: skip
        assert gw.replay() == gw.orders()
    with psycopg.connect(pg_url, autocommit=True) as con:
        for statement in ("UPDATE event_log SET payload = '{}'", "DELETE FROM event_log", "TRUNCATE event_log"):
            with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                con.execute(statement)
        assert con.execute("SELECT count(*) FROM order_events WHERE NOT accepted").fetchone() == (3,)


def test_a_postgresql_book_holds_exactly_what_a_duckdb_book_holds(pg_url: str, tmp_path: Path) -> None:
    with oms.open(":memory:", clock=oms.SimulatedClock()) as duck, oms.open(
        pg_url, clock=oms.SimulatedClock()
    ) as pg:  # fmt: skip
        session(duck)
        session(pg)
        assert pg.orders() == duck.orders() and pg.events() == duck.events()
        for frame in (views.blotter, views.summary, lambda gw: views.sql(gw, "SELECT * FROM order_events")):
            assert frame(pg).equals(frame(duck))
        assert views.verify_backend(pg)["matches_gateway"].all()


def test_the_parquet_export_streams_either_store_into_the_same_files(pg_url: str, tmp_path: Path) -> None:
    from oms.store.export import export_parquet

    duck_file = tmp_path / "book.duckdb"
    with oms.open(duck_file, clock=oms.SimulatedClock()) as duck, oms.open(
        pg_url, clock=oms.SimulatedClock()
    ) as pg:  # fmt: skip
        session(duck)
        session(pg)
        for gw, folder in ((duck, tmp_path / "duck"), (pg, tmp_path / "pg")):
            assert export_parquet(gw._store, folder, batch_rows=2) == {"order_events.parquet": 9, "orders.parquet": 3}
    for name in ("order_events.parquet", "orders.parquet"):
        assert pq.read_table(tmp_path / "pg" / name).equals(pq.read_table(tmp_path / "duck" / name))
    events = pq.read_table(tmp_path / "pg" / "order_events.parquet")
    assert str(events.schema.field("price").type) == "decimal128(16, 4)"
    done = subprocess.run([sys.executable, "-m", "oms.cli", "export", "--db", pg_url, "--parquet",
                           str(tmp_path / "cli")], capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "order_events.parquet: 9 rows" in done.stdout and "orders.parquet: 3 rows" in done.stdout


def test_two_engines_on_one_database_share_ids_client_ids_and_each_others_changes(pg_url: str) -> None:
    with oms.open(pg_url) as a, oms.open(pg_url) as b:
        first = a.create(symbol="INFY", side="BUY", quantity=10, price="100", client_order_id="shared")
        second = b.create(symbol="INFY", side="BUY", quantity=10, price="100")
        assert (first.order_id, second.order_id) == (1, 2)
        b.modify(first.order_id, price="99")  # a's cached copy is now stale
        with pytest.raises(oms.InvalidTransition, match="MODIFIED"):
            a.cancel(first.order_id)
        assert a.execute(first.order_id).executed_price == Decimal("99")
        with pytest.raises(oms.DuplicateClientOrderId):
            b.create(symbol="TCS", side="SELL", quantity=1, price="1", client_order_id="shared")
        assert a.get(first.order_id) == b.get(first.order_id) and a.orders() == b.orders()
        assert [e.seq for e in a.events()] == list(range(1, 7))
        assert a.replay() == b.orders()


def test_racing_commands_from_two_engines_on_one_order_have_exactly_one_winner(pg_url: str) -> None:
    with oms.open(pg_url) as a, oms.open(pg_url) as b:
        ids = [a.create(symbol="INFY", side="BUY", quantity=1, price="10").order_id for _ in range(20)]
        outcomes: dict[int, list[str]] = {i: [] for i in ids}
        barrier = threading.Barrier(2)

        def race(gw: oms.engine.Engine, act: str) -> None:
            for order_id in ids:
                barrier.wait(timeout=30)
                try:
                    getattr(gw, act)(order_id)
                    outcomes[order_id].append(act)
                except oms.InvalidTransition:
                    pass

        threads = [threading.Thread(target=race, args=args) for args in ((a, "cancel"), (b, "execute"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert all(len(winners) == 1 for winners in outcomes.values()), outcomes
        for order in a.orders():
            assert order.status.value == {"cancel": "CANCELLED", "execute": "EXECUTED"}[outcomes[order.order_id][0]]
        assert a.replay() == a.orders()


def test_an_engine_keeps_working_across_a_restart_of_the_database_server(pg_cluster: TempCluster, pg_url: str) -> None:
    with oms.open(pg_url) as gw:
        order = gw.create(symbol="INFY", side="BUY", quantity=5, price="10")
        pg_cluster.restart(immediate=True)  # as a crash: no checkpoint, the WAL replayed
        assert gw.get(order.order_id) == order  # the connection is opened again
        assert gw.execute(order.order_id).status.value == "EXECUTED"
    with oms.open(pg_url) as again:
        assert again.get(order.order_id).status.value == "EXECUTED"


def test_a_book_that_cannot_be_used_is_one_clear_error_naming_it_without_its_password(
    pg_cluster: TempCluster, pg_url: str
) -> None:
    with oms.open(pg_url):
        pass
    foreign = pg_cluster.create_database(f"{pg_url.rsplit('/', 1)[1]}_foreign")
    with psycopg.connect(foreign, autocommit=True) as con:
        con.execute("CREATE TABLE invoices (id INTEGER)")
    newer = pg_cluster.create_database(f"{pg_url.rsplit('/', 1)[1]}_newer")
    with oms.open(newer):
        pass
    with psycopg.connect(newer, autocommit=True) as con:
        con.execute("INSERT INTO oms_schema VALUES (%s, now())", [SCHEMA_VERSION + 1])
    cases = {
        "postgresql://nobody@127.0.0.1:1/x": (oms.StoreError, "cannot reach the PostgreSQL server"),
        pg_cluster.url("postgres", password="not-the-password"): (oms.StoreError, "refused the user or password"),
        pg_cluster.url("no_such_book"): (oms.StoreError, "no such database"),
        foreign: (oms.StoreError, "of something else (tables: invoices)"),
        newer: (oms.SchemaTooNew, f"schema version {SCHEMA_VERSION + 1}, newer than this oms"),
    }
    for url, (error, words) in cases.items():
        with pytest.raises(error) as refused:
            oms.open(url)
        assert words in refused.value.message
        assert "oms-test-password" not in refused.value.message and "not-the-password" not in refused.value.message
    done = subprocess.run([sys.executable, "-m", "oms.cli", "serve", "--db", "postgresql://nobody@127.0.0.1:1/x"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        "oms serve: STORE_ERROR: postgresql://nobody@127.0.0.1:1/x: cannot reach the PostgreSQL server: "
        "start it, or check the host and port in the URL"
    ]


BULK = [
    {"symbol": "INFY", "side": "BUY", "quantity": 100, "price": "1500.25", "client_order_id": "b-1"},
    {"symbol": "TCS", "side": "SELL", "quantity": 5, "order_type": "MARKET"},
    {"symbol": "INFY", "side": "SELL", "quantity": 1, "price": "999999999999.9999", "client_order_id": 'b"\\2'},
]


def test_bulk_create_on_postgresql_holds_exactly_what_it_holds_on_duckdb(pg_url: str, tmp_path: Path) -> None:
    books = {}
    for name, url in (("pg", pg_url), ("duck", str(tmp_path / "bulk.duckdb"))):
        with oms.open(url, clock=oms.SimulatedClock()) as gw:
            gw.create(symbol="A", side="BUY", quantity=1, price="1")
            assert gw.bulk_create(BULK) == range(2, 5)
            assert gw.create(symbol="A", side="BUY", quantity=1, price="1").order_id == 5  # ids go on
            rows = views.sql(gw, "SELECT * FROM orders").shape
            books[name] = (gw.orders(), gw.events(), gw.replay() == gw.orders(), rows)
    assert books["pg"] == books["duck"]
    with oms.open(pg_url) as reopened:  # what the database holds, not the engine's memory
        assert reopened.get(4).client_order_id == 'b"\\2' and reopened.get(4).price == Decimal("999999999999.9999")
        assert [e.order_id for e in reopened.events()] == [1, 2, 3, 4, 5]


def test_bulk_create_on_postgresql_is_all_or_nothing_and_knows_the_other_writers_client_ids(pg_url: str) -> None:
    with oms.open(pg_url, clock=oms.SimulatedClock()) as first, oms.open(pg_url, clock=oms.SimulatedClock()) as second:
        first.create(symbol="A", side="BUY", quantity=1, price="1", client_order_id="b-1")  # after second opened
        with pytest.raises(oms.OMSError) as refused:
            second.bulk_create(BULK)  # row 0 reuses the client order id the other writer just took
        assert refused.value.code == "DUPLICATE_CLIENT_ORDER_ID"
        with pytest.raises(oms.ValidationError):
            second.bulk_create([BULK[1], {**BULK[1], "quantity": 0}])  # one bad row: nothing stored
        assert [o.order_id for o in second.orders()] == [1]
        assert [(e.action.value, e.accepted) for e in second.events()] == [
            ("create", True), ("create", False), ("create", False),
        ]  # fmt: skip
        assert second.bulk_create(BULK[1:]) == range(2, 4)
        assert first.create(symbol="A", side="BUY", quantity=1, price="1").order_id == 4  # the other writer goes on
        assert first.replay() == first.orders() == second.orders()


def test_a_big_bulk_create_on_postgresql_is_one_copy_and_reads_back_whole(pg_url: str) -> None:
    n = 20_000
    frame = pd.DataFrame({"symbol": ["INFY", "TCS"] * (n // 2), "side": "BUY", "quantity": range(1, n + 1),
                          "price": ["1500.25", "0.0001"] * (n // 2)})  # fmt: skip
    with oms.open(pg_url, clock=oms.SimulatedClock()) as gw:
        assert gw.bulk_create(frame) == range(1, n + 1)
    with oms.open(pg_url) as reopened:
        orders = reopened.orders()
        assert len(orders) == n and orders[-1].quantity == n and orders[-1].price == Decimal("0.0001")
        assert views.sql(reopened, "SELECT count(*) AS n FROM order_events")["n"].tolist() == [n]
        assert reopened.replay() == orders


def test_a_commit_the_server_refuses_records_nothing_and_the_next_one_commits(pg_url: str) -> None:
    """The appended events travel with the COMMIT (one pipeline): when the server refuses
    the statement, the COMMIT is not run, the transaction is rolled back, and the book
    goes on. (The refusal is made here by a row written behind the engine's back.)"""
    with oms.open(pg_url, clock=oms.SimulatedClock()) as gw:
        gw.create(symbol="A", side="BUY", quantity=1, price="1")
        with psycopg.connect(pg_url, autocommit=True) as con:
            con.execute(
                "INSERT INTO orders VALUES (99, 'taken', 'A', 'BUY', 'LIMIT', 1, 1, 'NEW', 1, 0, NULL, now(), now())"
            )
        with pytest.raises(oms.StoreError, match=r"duplicate key|unique"):
            gw.create(symbol="A", side="BUY", quantity=1, price="1", client_order_id="taken")
        assert gw.create(symbol="B", side="BUY", quantity=2, price="2").order_id == 2  # nothing was used up
        with psycopg.connect(pg_url) as con:
            assert con.execute("SELECT seq, order_id FROM event_log ORDER BY seq").fetchall() == [(1, 1), (2, 2)]
            assert con.execute("SELECT last_seq, last_order_id FROM oms_counters").fetchone() == (2, 2)


def test_a_user_who_may_not_write_the_book_is_refused_when_it_opens_not_at_each_command(
    pg_cluster: TempCluster, pg_url: str
) -> None:
    with oms.open(pg_url) as gw:
        gw.create(symbol="A", side="BUY", quantity=1, price="1")
    suffix = pg_url.rsplit("/", 1)[1]
    reader, creator = f"reader_{suffix}", f"creator_{suffix}"
    empty = pg_cluster.create_database(f"{suffix}_empty")
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute(f"CREATE ROLE {reader} LOGIN PASSWORD 'rpw'".encode())
        con.execute(f"CREATE ROLE {creator} LOGIN PASSWORD 'cpw'".encode())
        con.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {reader}".encode())
    as_reader = pg_cluster.url(suffix, user=reader, password="rpw")
    with pytest.raises(oms.StoreError) as refused:
        oms.open(as_reader)
    assert f"the user {reader} may read this book but not write it" in refused.value.message
    assert "INSERT on event_log" in refused.value.message and "UPDATE on oms_counters" in refused.value.message
    with oms.open(as_reader, read_only=True) as book:  # reading needs SELECT only
        assert [o.order_id for o in book.orders()] == [1]
    with pytest.raises(oms.StoreError) as refused:  # PostgreSQL 15: only the owner creates in public
        oms.open(pg_cluster.url(empty.rsplit("/", 1)[1], user=creator, password="cpw"))
    assert f"the user {creator} may not open this book for writing (permission denied for schema public)" in (
        refused.value.message
    )
    assert "LINE 1" not in refused.value.message
    with psycopg.connect(empty) as con:
        tables = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
        assert tables.fetchone() == (0,)


def test_a_batch_the_server_refuses_is_committed_again_one_by_one_so_one_bad_command_fails_alone(pg_url: str) -> None:
    """One failing command must not fail the others of its batch: when the server refuses
    the batch's statement and the connection stays up, nothing was recorded, so the engine
    commits the commands one by one, as on DuckDB (a lost connection stays "unknown")."""
    from oms.commands import Command

    with oms.open(pg_url, clock=oms.SimulatedClock()) as gw:
        with psycopg.connect(pg_url, autocommit=True) as con:  # a row written behind the engine's back
            con.execute(
                "INSERT INTO orders VALUES (99, 'taken', 'A', 'BUY', 'LIMIT', 1, 1, 'NEW', 1, 0, NULL, now(), now())"
            )
        creates = [{"symbol": "A", "side": "BUY", "quantity": 1, "price": "1", **extra}
                   for extra in ({}, {"client_order_id": "taken"}, {})]  # fmt: skip
        first, refused, third = gw.submit_many([Command(oms.Action.CREATE, None, c) for c in creates])
        assert isinstance(refused, oms.StoreError) and "taken" in refused.message
        assert isinstance(first, oms.Order) and isinstance(third, oms.Order)
        assert (first.order_id, third.order_id) == (1, 2)
        assert [o.order_id for o in gw.orders()] == [1, 2, 99]


# ---- a batch decided on what its writer knew, placed in one round trip ----------------------


@contextmanager
def before_placing(gw: oms.engine.Engine, meanwhile: Callable[[], object], times: int = 1) -> Iterator[list[int]]:
    """Run ``meanwhile`` (another writer's commands) after ``gw`` has decided a batch and
    before its store places it, the first ``times`` times: the interleaving two server
    processes make by chance, made on purpose. Yields the ``since`` of each placement."""
    store: Any = gw._store
    place, calls = store.place, []

    def placing(since: int, *args: Any, **kwargs: Any) -> Any:
        calls.append(since)
        if len(calls) <= times:
            meanwhile()
        return place(since, *args, **kwargs)

    store.place = placing  # this engine's store only
    try:
        yield calls
    finally:
        del store.place


def buy(gw: oms.engine.Engine, **extra: Any) -> oms.Order:
    return gw.create(symbol="INFY", side="BUY", quantity=1, price="10", **extra)


def test_a_batch_decided_before_another_writers_creates_lands_after_them_with_its_ids_moved_on(pg_url: str) -> None:
    start = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # a decides after b's creates (else: late, below)
    with oms.open(pg_url, clock=oms.SimulatedClock(start)) as b, \
            oms.open(pg_url, clock=oms.SimulatedClock(start + timedelta(hours=1))) as a:  # fmt: skip
        assert buy(b).order_id == 1
        with before_placing(a, lambda: [buy(b), buy(b)]) as calls:
            late = buy(a)  # decided as order 2, while b created 2 and 3
        assert len(calls) == 1 and late.order_id == 4
        assert a.modify(4, quantity=5).quantity == 5  # the engine knows it by its id in the book
        assert [o.order_id for o in b.orders()] == [1, 2, 3, 4] and a.get(4) == b.get(4)
        assert [(e.seq, e.order_id) for e in a.events()] == [(1, 1), (2, 2), (3, 3), (4, 4), (5, 4)]
        assert a.replay() == a.orders() and buy(a).order_id == 5


def test_a_command_on_an_order_another_writer_changed_meanwhile_is_decided_again(pg_url: str) -> None:
    with oms.open(pg_url) as a, oms.open(pg_url) as b:
        order = buy(a)
        with (
            before_placing(a, lambda: b.cancel(order.order_id)) as calls,
            pytest.raises(oms.InvalidTransition, match="CANCELLED"),  # decided EXECUTED at first
        ):
            a.execute(order.order_id)
        assert len(calls) == 2  # placed once the cancel was known
        assert [(e.action.value, e.accepted) for e in a.events(order.order_id)] == [
            ("create", True), ("cancel", True), ("execute", False)]  # fmt: skip
        assert a.get(order.order_id).status.value == "CANCELLED" and a.replay() == a.orders()


def test_a_client_order_id_another_writer_took_meanwhile_is_refused(pg_url: str) -> None:
    with oms.open(pg_url) as a, oms.open(pg_url) as b:
        with before_placing(a, lambda: buy(b, client_order_id="mine")), pytest.raises(oms.DuplicateClientOrderId):
            buy(a, client_order_id="mine")
        assert [(o.order_id, o.client_order_id) for o in a.orders()] == [(1, "mine")]


def test_a_command_naming_an_order_not_yet_created_is_decided_again_after_others_create_it(pg_url: str) -> None:
    """Cancel 1 sent in the same batch as a create: decided as the cancel of the batch's
    own new order 1; but another writer created order 1 meanwhile, so the batch is
    decided again -- the cancel is of that order, and the create is order 2."""
    from oms.commands import Command

    with oms.open(pg_url) as a, oms.open(pg_url) as b:
        create = {"symbol": "INFY", "side": "BUY", "quantity": 1, "price": "10"}
        with before_placing(a, lambda: buy(b, client_order_id="theirs")) as calls:
            made, cancelled = a.submit_many([Command(oms.Action.CREATE, None, create), Command(oms.Action.CANCEL, 1)])
        assert len(calls) == 2
        assert isinstance(made, oms.Order) and isinstance(cancelled, oms.Order)
        assert (made.order_id, cancelled.order_id, cancelled.client_order_id) == (2, 1, "theirs")
        assert [(o.order_id, o.status.value) for o in b.orders()] == [(1, "CANCELLED"), (2, "NEW")]


def test_a_batch_decided_before_the_books_last_event_is_decided_again_so_the_log_stays_oldest_first(
    pg_url: str,
) -> None:
    start = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    a_clock = oms.SimulatedClock(start, step=timedelta(minutes=60))
    b_clock = oms.SimulatedClock(start + timedelta(minutes=30), step=timedelta(minutes=60))
    with oms.open(pg_url, clock=a_clock) as a, oms.open(pg_url, clock=b_clock) as b:
        with before_placing(a, lambda: buy(b)) as calls:  # a decides at 09:00, b commits at 09:30
            order = buy(a)
        assert len(calls) == 2 and order.created_at == start + timedelta(minutes=60)
        times = [e.at for e in a.events()]
        assert times == sorted(times) and len(times) == 2


def test_a_batch_that_keeps_meeting_other_writers_is_decided_under_the_books_lock(pg_url: str) -> None:
    with oms.open(pg_url) as a, oms.open(pg_url) as b:
        order = buy(a)

        def modify() -> None:  # accepted once, then refused: either is news of the order
            with contextlib.suppress(oms.InvalidTransition):
                b.modify(order.order_id, quantity=7)

        with before_placing(a, modify, times=99) as calls, pytest.raises(oms.InvalidTransition, match="MODIFIED"):
            a.cancel(order.order_id)
        assert len(calls) == oms.engine.PLACE_TRIES  # then decided holding the lock: no one in between
        assert [(e.action.value, e.accepted) for e in a.events(order.order_id)] == [
            ("create", True), ("modify", True), ("modify", False), ("modify", False), ("cancel", False)]  # fmt: skip
        assert a.get(order.order_id).quantity == 7 and a.replay() == b.orders()


def test_a_version_1_book_is_read_as_it_is_and_gets_the_commit_function_from_its_next_writer(pg_url: str) -> None:
    with oms.open(pg_url) as gw:
        buy(gw)
    with psycopg.connect(pg_url, autocommit=True) as con:  # as an oms of version 1 left it
        con.execute(pg._events_view("payload::json", replace=True).encode())
        con.execute("DROP FUNCTION oms_place")
        con.execute("DROP FUNCTION oms_payload")
        con.execute("DELETE FROM oms_schema WHERE version > 1")
    with oms.open(pg_url, read_only=True) as book:  # a read needs no upgrade
        assert [o.order_id for o in book.orders()] == [1]
    with oms.open(pg_url) as gw:
        assert buy(gw).order_id == 2
    with psycopg.connect(pg_url) as con:
        assert con.execute("SELECT array_agg(version ORDER BY version) FROM oms_schema").fetchone() == ([1, 2],)
        assert con.execute("SELECT count(*) FROM pg_proc WHERE proname = 'oms_place'").fetchone() == (1,)


def test_commits_go_on_when_the_writer_socket_is_numbered_above_1024(pg_url: str) -> None:
    """A busy server process holds more than 1024 client sockets, so the writer's own may be
    numbered above what ``select()`` takes: the check of an idle writer must not care."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1500), hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        with oms.open(pg_url) as gw:
            assert [buy(gw).order_id for _ in range(3)] == [1, 2, 3]
            assert gw._store._writer.fileno() >= 1024  # type: ignore[attr-defined]
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_refused_placement_writes_nothing_and_does_not_wait_for_the_disk(pg_url: str) -> None:
    with oms.open(pg_url) as a, oms.open(pg_url) as b:
        order = buy(a)
        b.modify(order.order_id, quantity=3)  # news of a's order, after a's last seq (1)
        store: Any = a._store
        row = (2, order.order_id, "{}")  # never written: the batch read the order b changed
        with psycopg.connect(pg_url, autocommit=True) as con:
            syncs = "SELECT wal_sync FROM pg_stat_wal"
            con.execute("SELECT pg_stat_force_next_flush()")
            before = con.execute(syncs).fetchone()
            for _ in range(20):
                placement = store.place(
                    1, 1, [row], reads={order.order_id}, client_order_ids=set(), pinned=None, created=0
                )
                assert not placement.placed and placement.news is not None and placement.news.touched == {1}
            store._writer.execute("SELECT pg_stat_force_next_flush()")
            after = con.execute(syncs).fetchone()
            assert before is not None and after is not None
            assert after[0] - before[0] < 10  # 20 with a flush each; the WAL writer's own may add a few
            assert con.execute("SELECT last_seq, last_order_id FROM oms_counters").fetchone() == (2, 1)


def test_a_refused_request_carrying_a_nul_is_logged_as_on_duckdb_and_the_book_goes_on(
    pg_url: str, tmp_path: Path
) -> None:
    """PostgreSQL's JSON parser refuses the escape \\u0000 in any string it reads: a refused
    request carrying a NUL must still be a VALIDATION_ERROR logged as it came, never a
    STORE_ERROR, and must not stop the other writers, whose commits read it as news."""
    books = {"pg": pg_url, "duck": str(tmp_path / "oms.duckdb")}
    logs = {}
    for name, url in books.items():
        with contextlib.ExitStack() as stack:
            a = stack.enter_context(oms.open(url, clock=oms.SimulatedClock()))
            b = stack.enter_context(oms.open(url)) if name == "pg" else a  # one writer per DuckDB file
            for bad in ({"symbol": "A\x00"}, {"symbol": "INFY", "client_order_id": "x\x00"}):
                with pytest.raises(oms.ValidationError):
                    a.create(side="BUY", quantity=1, price="1", **bad)
            assert buy(a, client_order_id="a\\u0000").client_order_id == "a\\u0000"  # a backslash, not a NUL
            assert buy(b).order_id == 2
            assert b.bulk_create([{"symbol": "C", "side": "BUY", "quantity": 1, "price": "1"}]) == range(3, 4)
            logs[name] = [(e.accepted, e.request) for e in a.events()][:3]
            assert [(o.order_id, o.client_order_id) for o in a.orders()] == [(1, "a\\u0000"), (2, None), (3, None)]
    assert logs["pg"] == logs["duck"] and logs["pg"][0] == (False, {**logs["pg"][0][1], "symbol": "A\x00"})
    with psycopg.connect(pg_url) as con:  # the typed view reads the NUL as its symbol
        assert con.execute("SELECT request->>'symbol' FROM order_events WHERE seq = 1").fetchone() == ("A\u2400",)


class ForgetfulProxy:
    """A TCP hop to the server that can forget its flows, as a NAT or firewall does after an
    idle timeout: the server's side is closed, the client hears nothing, and its next send
    is answered with a reset."""

    def __init__(self, url: str) -> None:
        self.upstream = int(url.rsplit(":", 1)[1].split("/", 1)[0])
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = url.replace(f":{self.upstream}/", f":{self.listener.getsockname()[1]}/")
        self.flows: list[tuple[socket.socket, socket.socket]] = []
        self.forgotten: set[socket.socket] = set()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream))
            self.flows.append((client, server))
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                if src in self.forgotten:  # a reset, as the middlebox answers a flow it forgot
                    src.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    src.close()
                    return
                dst.sendall(data)

    def forget(self) -> None:
        for client, server in self.flows:
            self.forgotten.add(client)
            server.shutdown(socket.SHUT_RDWR)
            server.close()

    def close(self) -> None:
        self.listener.close()


def test_a_writer_connection_dropped_without_a_word_is_opened_again_before_a_commit(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pg, "IDLE_CHECK_S", 0.0)  # the check after an idle while, at once
    proxy = ForgetfulProxy(pg_url)
    try:
        with oms.open(proxy.url) as gw:
            assert buy(gw).order_id == 1
            proxy.forget()
            assert buy(gw).order_id == 2  # not "may or may not have been recorded"
            assert [o.order_id for o in gw.orders()] == [1, 2]
    finally:
        proxy.close()


def test_a_user_who_may_not_call_the_commit_function_is_refused_when_it_opens(
    pg_cluster: TempCluster, pg_url: str
) -> None:
    with oms.open(pg_url) as gw:
        buy(gw)
    suffix = pg_url.rsplit("/", 1)[1]
    writer = f"writer_{suffix}"
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute(f"CREATE ROLE {writer} LOGIN PASSWORD 'wpw'".encode())
        con.execute(f"GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO {writer}".encode())
        con.execute("REVOKE EXECUTE ON FUNCTION oms_place(bigint, bigint, text) FROM PUBLIC")
    with pytest.raises(
        oms.StoreError, match=f"the user {writer} may read this book but not write it .*EXECUTE on oms_place"
    ):
        oms.open(pg_cluster.url(suffix, user=writer, password="wpw"))


def test_writers_commit_in_read_committed_whatever_the_databases_default(pg_url: str) -> None:
    """oms_place relies on each statement seeing every earlier commit: a database whose
    default is REPEATABLE READ must not turn racing writers' commits into errors."""
    with psycopg.connect(pg_url, autocommit=True) as con:
        database = pg_url.rsplit("/", 1)[1]
        con.execute(f"ALTER DATABASE {database} SET default_transaction_isolation = 'repeatable read'".encode())
    with oms.open(pg_url) as a, oms.open(pg_url) as b:
        errors: list[Exception] = []

        def create(gw: oms.engine.Engine) -> None:
            for _ in range(100):
                try:
                    buy(gw)
                except oms.OMSError as e:
                    errors.append(e)

        threads = [threading.Thread(target=create, args=(gw,)) for gw in (a, b, a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == [] and [o.order_id for o in a.orders()] == list(range(1, 401))


def test_a_writer_whose_clock_lags_the_books_never_writes_an_event_earlier_than_the_last(pg_url: str) -> None:
    """Two hosts' clocks differ: the lagging writer's events take the book's last time, so
    the log stays oldest first (by the placement's check, and under the lock alike)."""
    start = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    with oms.open(pg_url, clock=oms.SimulatedClock(start + timedelta(minutes=30))) as ahead, \
            oms.open(pg_url, clock=oms.SimulatedClock(start, step=timedelta(minutes=1))) as behind:  # fmt: skip
        buy(ahead)
        assert buy(behind).created_at == start + timedelta(minutes=30)  # not 09:00
        assert buy(behind).created_at == start + timedelta(minutes=30)  # not 09:02
        assert len(behind.bulk_create([{"symbol": "C", "side": "BUY", "quantity": 1, "price": "1"}])) == 1
        times = [e.at for e in behind.events()]
        assert times == sorted(times) and times[-1] == start + timedelta(minutes=30)


def test_an_id_named_far_above_the_book_does_not_hold_up_the_batch_it_came_in(pg_url: str) -> None:
    from oms.commands import Command

    start = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # a decides after b's creates (else: late)
    with oms.open(pg_url, clock=oms.SimulatedClock(start)) as b, \
            oms.open(pg_url, clock=oms.SimulatedClock(start + timedelta(hours=1))) as a:  # fmt: skip
        buy(b)
        create = {"symbol": "INFY", "side": "BUY", "quantity": 1, "price": "10"}
        with before_placing(a, lambda: buy(b)) as calls:
            far = Command(oms.Action.CANCEL, 10**12)
            made, refused = a.submit_many([Command(oms.Action.CREATE, None, create), far])
        assert len(calls) == 1  # order 10**12 is beyond anything b's creates could have made
        assert isinstance(made, oms.Order) and made.order_id == 3 and isinstance(refused, oms.OrderNotFound)
        assert [(e.order_id, e.accepted) for e in a.events()][-2:] == [(3, True), (10**12, False)]  # kept, not moved
