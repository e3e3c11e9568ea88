"""Every bad field is refused with VALIDATION_ERROR naming it, and stores nothing."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

import oms
from oms.engine import Engine

GOOD: dict[str, Any] = {"symbol": "INFY", "side": "BUY", "quantity": 100, "price": "1500.25"}

BAD_CREATES = [
    ({"symbol": ""}, "symbol"),
    ({"symbol": "A" * 17}, "symbol"),
    ({"symbol": "IN FY"}, "symbol"),
    ({"symbol": "INFY$"}, "symbol"),
    ({"symbol": 42}, "symbol"),
    ({"side": "HOLD"}, "side"),
    ({"side": None}, "side"),
    ({"order_type": "STOP"}, "order_type"),
    ({"quantity": 0}, "quantity"),
    ({"quantity": -5}, "quantity"),
    ({"quantity": 10**9 + 1}, "quantity"),
    ({"quantity": 1.5}, "quantity"),
    ({"quantity": 100.0}, "quantity"),
    ({"quantity": "100"}, "quantity"),
    ({"quantity": True}, "quantity"),
    ({"price": "0"}, "price"),
    ({"price": "-1"}, "price"),
    ({"price": "1000000000000"}, "price"),
    ({"price": "1.23456"}, "price"),
    ({"price": "abc"}, "price"),
    ({"price": float("nan")}, "price"),
    ({"price": float("inf")}, "price"),
    ({"price": "Infinity"}, "price"),
    ({"price": True}, "price"),
    ({"price": None}, "price"),  # LIMIT needs a price
    ({"order_type": "MARKET", "price": "10"}, "price"),  # MARKET forbids one
    ({"client_order_id": ""}, "client_order_id"),
    ({"client_order_id": "has space"}, "client_order_id"),
    ({"client_order_id": "x" * 65}, "client_order_id"),
]


def create(gw: Engine, **changes: Any) -> oms.Order:
    request = {**GOOD, **changes}
    return gw.create(**{k: v for k, v in request.items() if v is not None or k in ("side",)})


@pytest.mark.parametrize(("changes", "field"), BAD_CREATES, ids=[f"{f}={c}" for c, f in BAD_CREATES])
def test_bad_create_field_is_refused_naming_the_field_and_stores_nothing(
    gw: Engine, changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(oms.ValidationError) as caught:
        create(gw, **changes)
    assert caught.value.code == "VALIDATION_ERROR"
    assert caught.value.fields == [field]
    assert field in caught.value.message
    assert gw.orders() == []
    (event,) = gw.events()
    assert (event.accepted, event.reason, event.order_id) == (False, "VALIDATION_ERROR", None)


def test_all_bad_fields_of_one_request_are_reported_together(gw: Engine) -> None:
    with pytest.raises(oms.ValidationError) as caught:
        gw.create(symbol="", side="HOLD", quantity=0, price="-1")
    assert caught.value.fields == ["symbol", "side", "quantity", "price"]


def test_symbol_side_and_type_are_normalized_to_upper_case(gw: Engine) -> None:
    order = gw.create(symbol="infy.ns", side="buy", quantity=1, price=1, order_type="limit")
    assert (order.symbol, order.side, order.order_type) == ("INFY.NS", oms.Side.BUY, oms.OrderType.LIMIT)


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("1500.25", "1500.25"),
        (1500.25, "1500.25"),
        (Decimal("0.0001"), "0.0001"),
        (7, "7"),
        ("999999999999.9999", "999999999999.9999"),
        ("1500.2500", "1500.25"),
    ],
)
def test_prices_are_exact_decimals_end_to_end(gw: Engine, given: Any, stored: str) -> None:
    order = gw.create(symbol="INFY", side="BUY", quantity=1, price=given)
    assert gw.get(order.order_id).price == Decimal(stored)
    assert str(gw.orders()[0].price) == stored


def test_market_order_needs_no_price_and_executes_only_with_one(gw: Engine) -> None:
    order = gw.create(symbol="INFY", side="SELL", quantity=10, order_type="MARKET")
    assert order.price is None
    with pytest.raises(oms.ValidationError) as caught:
        gw.execute(order.order_id)
    assert caught.value.fields == ["price"]
    assert gw.get(order.order_id).status is oms.Status.NEW
    assert gw.execute(order.order_id, price="99.5").executed_price == Decimal("99.5")


def test_modify_needs_quantity_or_price(gw: Engine) -> None:
    order = gw.create(**GOOD)
    with pytest.raises(oms.ValidationError) as caught:
        gw.modify(order.order_id)
    assert caught.value.fields == ["body"]
    assert gw.get(order.order_id) == order


@pytest.mark.parametrize(("changes", "field"), [({"quantity": 0}, "quantity"), ({"price": "1.00001"}, "price")])
def test_bad_modify_field_is_refused_and_changes_nothing(gw: Engine, changes: dict[str, Any], field: str) -> None:
    order = gw.create(**GOOD)
    with pytest.raises(oms.ValidationError) as caught:
        gw.modify(order.order_id, **changes)
    assert caught.value.fields == [field]
    assert gw.get(order.order_id) == order


def test_modify_of_a_market_order_price_is_refused(gw: Engine) -> None:
    order = gw.create(symbol="INFY", side="BUY", quantity=10, order_type="MARKET")
    with pytest.raises(oms.ValidationError) as caught:
        gw.modify(order.order_id, price="10")
    assert caught.value.fields == ["price"]
    assert gw.modify(order.order_id, quantity=20).quantity == 20


@pytest.mark.parametrize(
    ("side", "price", "allowed"),
    [
        ("BUY", "1500.25", True),
        ("BUY", "1500", True),
        ("BUY", "1500.26", False),
        ("SELL", "1500.25", True),
        ("SELL", "1501", True),
        ("SELL", "1500.24", False),
    ],
)
def test_execution_price_may_not_be_worse_than_the_limit(gw: Engine, side: str, price: str, allowed: bool) -> None:
    order = gw.create(symbol="INFY", side=side, quantity=100, price="1500.25")
    if allowed:
        done = gw.execute(order.order_id, price=price)
        assert (done.status, done.executed_price, done.executed_quantity) == (oms.Status.EXECUTED, Decimal(price), 100)
        return
    with pytest.raises(oms.PriceOutsideLimit) as caught:
        gw.execute(order.order_id, price=price)
    assert caught.value.code == "PRICE_OUTSIDE_LIMIT"
    assert "1500.25" in caught.value.message and side in caught.value.message
    assert gw.get(order.order_id) == order


def test_limit_execution_defaults_to_the_limit_price(gw: Engine) -> None:
    order = gw.create(**GOOD)
    assert gw.execute(order.order_id).executed_price == Decimal("1500.25")


@pytest.mark.parametrize("order_id", [0, -1, "7", 1.0, True, None])
def test_bad_order_ids_are_validation_errors(gw: Engine, order_id: Any) -> None:
    with pytest.raises(oms.ValidationError) as caught:
        gw.cancel(order_id)
    assert caught.value.fields == ["order_id"]


def test_unknown_order_is_not_found(gw: Engine) -> None:
    for act in (lambda: gw.cancel(9), lambda: gw.modify(9, quantity=1), lambda: gw.execute(9), lambda: gw.get(9)):
        with pytest.raises(oms.OrderNotFound) as caught:
            act()
        assert caught.value.message == "order 9 does not exist"


def test_duplicate_client_order_id_is_refused_and_the_first_order_kept(gw: Engine) -> None:
    first = gw.create(**GOOD, client_order_id="ABC-1")
    with pytest.raises(oms.DuplicateClientOrderId) as caught:
        gw.create(**GOOD, client_order_id="ABC-1")
    assert "ABC-1" in caught.value.message
    assert gw.orders() == [first]
    assert gw.create(**GOOD, client_order_id="ABC-2").order_id == 2
