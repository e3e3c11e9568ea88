"""The bulk path: same verdicts as single creates, all or nothing, big books stay readable."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import oms
from oms import views
from oms.engine import Engine

ROWS: list[dict[str, Any]] = [
    {"symbol": "INFY", "side": "BUY", "quantity": 100, "price": "1500.25"},
    {"symbol": "infy.ns", "side": "sell", "quantity": 1, "price": "0.0001"},
    {"symbol": "TCS", "side": "BUY", "quantity": 5, "order_type": "MARKET"},
    {"symbol": "A" * 17, "side": "BUY", "quantity": 1, "price": "1"},
    {"symbol": "INFY", "side": "HOLD", "quantity": 1, "price": "1"},
    {"symbol": "INFY", "side": "BUY", "quantity": 0, "price": "1"},
    {"symbol": "INFY", "side": "BUY", "quantity": 10**9 + 1, "price": "1"},
    {"symbol": "INFY", "side": "BUY", "quantity": 1, "price": "1.23456"},
    {"symbol": "INFY", "side": "BUY", "quantity": 1, "price": "0"},
    {"symbol": "INFY", "side": "BUY", "quantity": 1, "price": "1000000000000"},
    {"symbol": "INFY", "side": "BUY", "quantity": 1},
    {"symbol": "INFY", "side": "BUY", "quantity": 1, "order_type": "MARKET", "price": "5"},
    {"symbol": "INFY", "side": "BUY", "quantity": 1, "order_type": "STOP", "price": "5"},
]


def single_verdict(row: dict[str, Any]) -> list[str]:
    with oms.open(":memory:") as gw:
        try:
            gw.create(**row)
        except oms.ValidationError as e:
            return e.fields
    return []


def bulk_verdict(row: dict[str, Any]) -> list[str]:
    with oms.open(":memory:") as gw:
        try:
            gw.bulk_create([row])
        except oms.ValidationError as e:
            return e.fields
    return []


@pytest.mark.parametrize("row", ROWS, ids=[str(r) for r in ROWS])
def test_bulk_and_single_creates_refuse_the_same_fields(row: dict[str, Any]) -> None:
    assert bulk_verdict(row) == single_verdict(row)


def test_bulk_orders_equal_the_same_orders_created_one_by_one() -> None:
    good = [r for r in ROWS if not single_verdict(r)]
    clock_start = oms.SimulatedClock()
    with oms.open(":memory:", clock=clock_start) as one, oms.open(":memory:", clock=oms.SimulatedClock()) as many:
        singles = [one.create(**r) for r in good]
        ids = many.bulk_create(good)
        bulk = many.orders()
    assert list(ids) == [o.order_id for o in singles] == [1, 2, 3]
    strip = [(o.order_id, o.symbol, o.side, o.order_type, o.quantity, o.price, o.status, o.version) for o in singles]
    assert strip == [
        (o.order_id, o.symbol, o.side, o.order_type, o.quantity, o.price, o.status, o.version) for o in bulk
    ]


def test_one_bad_row_refuses_the_whole_load_and_names_the_row(gw: Engine) -> None:
    frame = pd.DataFrame(
        {"symbol": ["INFY", "TCS", "BAD SYMBOL"], "side": ["BUY"] * 3, "quantity": [1, 2, 3], "price": ["1", "2", "3"]}
    )
    with pytest.raises(oms.ValidationError) as caught:
        gw.bulk_create(frame)
    assert caught.value.errors == [{"field": "symbol", "message": "rows 2: must be 1-16 letters, digits or . - _"}]
    assert gw.orders() == []
    (event,) = gw.events()
    assert (event.accepted, event.reason) == (False, "VALIDATION_ERROR")


def test_duplicate_client_order_ids_in_a_load_are_refused(gw: Engine) -> None:
    gw.create(symbol="INFY", side="BUY", quantity=1, price=1, client_order_id="X-1")
    with pytest.raises(oms.DuplicateClientOrderId):
        gw.bulk_create([{"symbol": "INFY", "side": "BUY", "quantity": 1, "price": 1, "client_order_id": "X-1"}])
    with pytest.raises(oms.DuplicateClientOrderId):
        gw.bulk_create([{"symbol": "A", "side": "BUY", "quantity": 1, "price": 1, "client_order_id": "Y"}] * 2)
    assert len(gw.orders()) == 1


def test_float_prices_are_taken_exactly_to_four_places(gw: Engine) -> None:
    gw.bulk_create(
        pd.DataFrame(
            {"symbol": ["A", "B", "C"], "side": ["BUY"] * 3, "quantity": [1, 1, 1], "price": [0.1, 1500.25, 99999.9999]}
        )
    )
    assert [o.price for o in gw.orders()] == [Decimal("0.1"), Decimal("1500.25"), Decimal("99999.9999")]


def test_big_loads_stay_readable_and_ids_continue(db_path: Path) -> None:
    """Holds the DuckDB 2.0 statistics trap the store avoids (an empty INSERT ... SELECT
    before a large insert in one transaction made filtered reads skip every row)."""
    n = 150_000
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "symbol": rng.choice(["INFY", "TCS"], n),
            "side": rng.choice(["BUY", "SELL"], n),
            "quantity": rng.integers(1, 1000, n),
            "price": np.round(rng.uniform(1, 100, n), 2),
        }
    )
    with oms.open(db_path) as gw:
        assert gw.bulk_create(frame) == range(1, n + 1)  # into a fresh book: nothing to fold first
        assert len(views.blotter(gw)) == n
        assert gw.get(n).quantity == int(frame["quantity"].iloc[-1])
        assert gw.bulk_create(frame) == range(n + 1, 2 * n + 1)  # right after a load: nothing to fold
        assert len(gw.orders(status="NEW")) == 2 * n
        gw.cancel(1)
        assert gw.create(symbol="TCS", side="SELL", quantity=1, price=1).order_id == 2 * n + 1
        assert gw.bulk_create(frame.head(10)) == range(2 * n + 2, 2 * n + 12)  # after single commands
    with oms.open(db_path) as gw:
        assert len(views.blotter(gw)) == 2 * n + 11
        assert gw.get(1).status is oms.Status.CANCELLED


def test_float_prices_get_exactly_the_single_create_verdict(gw: Engine) -> None:
    for price in (999999999999.9999, 0.1 + 0.2, 1e-5):
        assert bulk_verdict({"symbol": "A", "side": "BUY", "quantity": 1, "price": price}) == single_verdict(
            {"symbol": "A", "side": "BUY", "quantity": 1, "price": price}
        )
    gw.bulk_create(pd.DataFrame({"symbol": ["A"], "side": ["BUY"], "quantity": [1], "price": [999999999999.9999]}))
    assert gw.orders()[0].price == Decimal("999999999999.9999")
