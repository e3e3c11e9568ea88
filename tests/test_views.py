"""pandas views: fixed columns, sorted rows, exact decimals, three-way backend check."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pytest

import oms
from oms import views
from oms.engine import Engine
from oms.store import ORDER_COLUMNS


@pytest.fixture
def book(gw: Engine) -> Engine:
    a = gw.create(symbol="INFY", side="BUY", quantity=100, price="1500.25")
    b = gw.create(symbol="TCS", side="SELL", quantity=10, order_type="MARKET")
    c = gw.create(symbol="INFY", side="SELL", quantity=7, price="0.0001", client_order_id="C-3")
    gw.modify(a.order_id, quantity=60, price="1499.9999")
    gw.execute(b.order_id, price="3000.1")
    gw.cancel(c.order_id)
    with pytest.raises(oms.InvalidTransition):
        gw.cancel(b.order_id)
    return gw


def test_blotter_has_the_order_columns_in_order_and_rows_sorted_by_id(book: Engine) -> None:
    frame = views.blotter(book)
    assert tuple(frame.columns) == ORDER_COLUMNS
    assert frame["order_id"].tolist() == [1, 2, 3]
    assert frame["status"].tolist() == ["MODIFIED", "EXECUTED", "CANCELLED"]


def test_blotter_prices_are_exact_decimals_not_floats(book: Engine) -> None:
    frame = views.blotter(book)
    assert str(frame["price"].dtype).startswith("decimal128(16, 4)")
    assert frame["price"].iloc[0] == Decimal("1499.9999")
    assert frame["price"].iloc[2] == Decimal("0.0001")
    assert pd.isna(frame["price"].iloc[1])
    assert frame["executed_price"].iloc[1] == Decimal("3000.1")


def test_blotter_timestamps_are_utc(book: Engine) -> None:
    created = views.blotter(book)["created_at"].iloc[0]
    assert str(created) == "2026-01-05 09:15:00+00:00"


def test_blotter_filters_match_the_gateway(book: Engine) -> None:
    assert views.blotter(book, status="cancelled")["order_id"].tolist() == [3]
    assert views.blotter(book, symbol="INFY")["order_id"].tolist() == [1, 3]
    with pytest.raises(oms.ValidationError):
        views.blotter(book, status="nope")


def test_events_view_lists_accepted_and_refused_commands_oldest_first(book: Engine) -> None:
    frame = views.events(book)
    assert frame["seq"].tolist() == list(range(1, 8))
    assert frame["accepted"].tolist() == [True] * 6 + [False]
    assert frame["reason"].iloc[-1] == "INVALID_TRANSITION"
    assert views.events(book, 2)["action"].tolist() == ["create", "execute", "cancel"]


def test_summary_by_status_counts_quantity_and_exact_notional(book: Engine) -> None:
    frame = views.summary(book, "status").set_index("status")
    assert frame.loc["MODIFIED", "notional"] == Decimal("60") * Decimal("1499.9999")
    assert frame.loc["EXECUTED", "executed_notional"] == Decimal("30001.0")
    assert frame["orders"].sum() == 3


def test_summary_by_symbol_is_sorted_by_symbol(book: Engine) -> None:
    frame = views.summary(book, "symbol")
    assert frame["symbol"].tolist() == ["INFY", "TCS"]
    assert frame["quantity"].tolist() == [67, 10]
    with pytest.raises(ValueError, match="by must be one of"):
        views.summary(book, "price")


def test_sql_reads_the_duckdb_store(book: Engine) -> None:
    frame = views.sql(book, "SELECT action, count(*) AS n FROM order_events WHERE NOT accepted GROUP BY action")
    assert frame.to_dict("records") == [{"action": "cancel", "n": 1}]


def test_backend_verification_agrees_three_ways(book: Engine) -> None:
    frame = views.verify_backend(book)
    assert frame["matches_gateway"].tolist() == [True, True, True]
    assert frame["orders"].tolist() == [3, 3, 3]
