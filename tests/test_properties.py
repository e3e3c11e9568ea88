"""Property-based: random command sequences against the embedded engine.

After every command: the projection equals the replay of the event log; a refused
command changes no order; an accepted one raises the order's version by exactly one.
"""

from __future__ import annotations

from typing import Any

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

import oms

symbols = st.sampled_from(["INFY", "TCS", "bad symbol", "", "X.NS"])
sides = st.sampled_from(["BUY", "SELL", "HOLD"])
quantities = st.one_of(st.integers(min_value=-2, max_value=10**9 + 2), st.sampled_from([1.5, "7", None]))
prices = st.one_of(
    st.decimals(min_value=-1, max_value=10**12 + 1, places=5, allow_nan=False, allow_infinity=False),
    st.sampled_from(["1500.25", "0", "abc", None, 99.5]),
)


class OrderBook(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.gw = oms.open(":memory:", clock=oms.SimulatedClock())
        self.before: list[oms.Order] = []

    def teardown(self) -> None:
        self.gw.close()

    def _order_ids(self) -> list[int]:
        return [o.order_id for o in self.gw.orders()] + [10_000]  # plus one that does not exist

    def _apply(self, target: int | None, command: Any) -> None:
        before = {o.order_id: o for o in self.gw.orders()}
        events_before = len(self.gw.events())
        try:
            result = command()
        except oms.OMSError as refusal:
            assert {o.order_id: o for o in self.gw.orders()} == before, f"refused {refusal.code} changed orders"
            (event,) = self.gw.events()[events_before:]
            assert (event.accepted, event.reason) == (False, refusal.code)
            return
        after = {o.order_id: o for o in self.gw.orders()}
        assert after[result.order_id] == result
        if target is None:
            assert result.version == 1 and result.order_id not in before
        else:
            assert result.version == before[target].version + 1
        assert {k: v for k, v in after.items() if k != result.order_id} == {
            k: v for k, v in before.items() if k != result.order_id
        }, "a command changed another order"

    @rule(symbol=symbols, side=sides, quantity=quantities, price=prices, market=st.booleans())
    def create(self, symbol: str, side: str, quantity: Any, price: Any, market: bool) -> None:
        kwargs = {"symbol": symbol, "side": side, "quantity": quantity, "price": price}
        kwargs["order_type"] = "MARKET" if market else "LIMIT"
        self._apply(None, lambda: self.gw.create(**kwargs))

    @rule(data=st.data(), quantity=quantities, price=prices)
    def modify(self, data: st.DataObject, quantity: Any, price: Any) -> None:
        order_id = data.draw(st.sampled_from(self._order_ids()))
        self._apply(order_id, lambda: self.gw.modify(order_id, quantity=quantity, price=price))

    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        order_id = data.draw(st.sampled_from(self._order_ids()))
        self._apply(order_id, lambda: self.gw.cancel(order_id))

    @rule(data=st.data(), price=prices)
    def execute(self, data: st.DataObject, price: Any) -> None:
        order_id = data.draw(st.sampled_from(self._order_ids()))
        self._apply(order_id, lambda: self.gw.execute(order_id, price=price))

    @invariant()
    def projection_equals_replay(self) -> None:
        assert self.gw.replay() == self.gw.orders()

    @invariant()
    def terminal_orders_are_filled_or_cancelled_consistently(self) -> None:
        for order in self.gw.orders():
            filled = order.status is oms.Status.EXECUTED
            assert (order.executed_quantity == order.quantity) if filled else order.executed_quantity == 0
            assert (order.executed_price is not None) == filled


OrderBook.TestCase.settings = settings(
    max_examples=30, stateful_step_count=20, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestOrderBook = OrderBook.TestCase
