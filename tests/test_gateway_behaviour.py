"""One behavioural suite, two transports and two stores: the embedded engine and the remote
gateway over a real uvicorn server on loopback, each on DuckDB and on a real PostgreSQL.
Whatever a notebook, widget or certification run sees through one, it sees through the
others: same orders, same timestamps (simulated clock), same error classes and codes."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

import oms
from conftest import ThreadedServer
from oms.client import RemoteGateway, ServerUnreachable
from oms.gateway import Gateway
from oms.lifecycle import TERMINAL, TRANSITIONS, Action, Status, path_to, refused_pairs


class Swappable:
    """Stands in for the engine a module-wide server serves; each test swaps a fresh one in."""

    current: Gateway

    def __getattr__(self, name: str) -> object:
        return getattr(self.current, name)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Swappable, str]]:
    """One real uvicorn server on loopback for the module, over a swappable engine."""
    slot = Swappable()
    with ThreadedServer(slot) as server:  # type: ignore[arg-type]
        yield slot, server.url


STORES = ("duckdb", "postgresql")


def fresh_book(request: pytest.FixtureRequest, store: str) -> str:
    """A fresh book of ``store``: DuckDB in memory, or a new PostgreSQL database."""
    return ":memory:" if store == "duckdb" else str(request.getfixturevalue("pg_url"))


@pytest.fixture(params=[(t, s) for s in STORES for t in ("embedded", "remote")], ids="-".join)
def gateway(request: pytest.FixtureRequest, served: tuple[Swappable, str]) -> Iterator[Gateway]:
    """A fresh gateway on a simulated clock: the engine itself, or the engine behind a
    real HTTP server reached through ``oms.connect``; on DuckDB or on PostgreSQL."""
    transport, store = request.param
    with oms.open(fresh_book(request, store), clock=oms.SimulatedClock()) as engine:
        if transport == "embedded":
            yield engine
            return
        slot, url = served
        slot.current = engine
        with oms.connect(url) as remote:
            yield remote


def new_order(gw: Gateway, **overrides: object) -> oms.Order:
    fields: dict[str, object] = {"symbol": "INFY", "side": "BUY", "quantity": 100, "price": "1500.25"}
    fields.update(overrides)
    return gw.create(**fields)  # type: ignore[arg-type]


def drive(gw: Gateway, order_id: int, actions: list[Action]) -> None:
    for action in actions:
        {Action.MODIFY: lambda: gw.modify(order_id, price="1499.5"),
         Action.CANCEL: lambda: gw.cancel(order_id),
         Action.EXECUTE: lambda: gw.execute(order_id)}[action]()  # fmt: skip


def test_the_gateway_satisfies_the_protocol_and_names_its_target(gateway: Gateway) -> None:
    assert isinstance(gateway, Gateway)
    assert gateway.target == ":memory:" or gateway.target.startswith(("http://127.0.0.1:", "postgresql://"))


def test_create_returns_a_new_order_with_id_1_version_1_and_an_upper_case_symbol(gateway: Gateway) -> None:
    order = new_order(gateway, symbol="infy", client_order_id="abc-1")
    assert (order.order_id, order.version, order.status, order.symbol) == (1, 1, Status.NEW, "INFY")
    assert order.price == Decimal("1500.25") and order.client_order_id == "abc-1"
    assert order.created_at == order.updated_at == oms.SimulatedClock()()
    assert gateway.get(1) == order


def test_prices_travel_exactly_at_both_ends_of_the_range(gateway: Gateway) -> None:
    for text in ("0.0001", "999999999999.9999", "1500.1"):
        order = new_order(gateway, price=text)
        assert str(order.price) == text and str(gateway.get(order.order_id).price) == text
    assert new_order(gateway, price=Decimal("12.3400")).price == Decimal("12.34")


def test_modify_of_a_new_order_changes_fields_and_makes_it_modified(gateway: Gateway) -> None:
    order = new_order(gateway)
    changed = gateway.modify(order.order_id, quantity=50, price="1499.5")
    assert (changed.status, changed.version, changed.quantity, changed.price) == (
        Status.MODIFIED, 2, 50, Decimal("1499.5"),
    )  # fmt: skip
    assert changed.updated_at > order.updated_at and changed.created_at == order.created_at


def test_execute_fills_a_limit_order_at_its_limit_price_by_default(gateway: Gateway) -> None:
    order = new_order(gateway)
    done = gateway.execute(order.order_id)
    assert (done.status, done.executed_quantity, done.executed_price) == (Status.EXECUTED, 100, Decimal("1500.25"))


def test_a_market_order_needs_an_execution_price_and_refuses_a_limit_price(gateway: Gateway) -> None:
    order = gateway.create(symbol="TCS", side="SELL", quantity=5, order_type="MARKET")
    with pytest.raises(oms.ValidationError) as refused:
        gateway.execute(order.order_id)
    assert refused.value.fields == ["price"]
    assert gateway.execute(order.order_id, price="3300.5").executed_price == Decimal("3300.5")
    with pytest.raises(oms.ValidationError) as refused:
        gateway.create(symbol="TCS", side="SELL", quantity=5, order_type="MARKET", price="1")
    assert refused.value.code == "VALIDATION_ERROR" and refused.value.fields == ["price"]


def test_execution_worse_than_the_limit_is_refused_and_changes_nothing(gateway: Gateway) -> None:
    buy, sell = new_order(gateway), new_order(gateway, side="SELL")
    with pytest.raises(oms.PriceOutsideLimit) as refused:
        gateway.execute(buy.order_id, price="1500.26")
    assert refused.value.code == "PRICE_OUTSIDE_LIMIT"
    with pytest.raises(oms.PriceOutsideLimit):
        gateway.execute(sell.order_id, price="1500.24")
    assert gateway.get(buy.order_id) == buy and gateway.get(sell.order_id) == sell
    assert gateway.execute(buy.order_id, price="1400").executed_price == Decimal("1400")


@pytest.mark.parametrize(("status", "action"), refused_pairs(), ids=lambda v: str(v))
def test_every_transition_the_table_refuses_is_refused_and_changes_nothing(
    gateway: Gateway, status: Status, action: Action
) -> None:
    order = new_order(gateway)
    drive(gateway, order.order_id, path_to(status))
    before = gateway.get(order.order_id)
    assert before.status is status
    with pytest.raises(oms.InvalidTransition) as refused:
        drive(gateway, order.order_id, [action])
    assert refused.value.code == "INVALID_TRANSITION"
    assert f"cannot {action.value} order {order.order_id}: status is {status.value}" in refused.value.message
    assert gateway.get(order.order_id) == before


@pytest.mark.parametrize(("start", "action"), list(TRANSITIONS), ids=lambda v: str(v))
def test_every_transition_the_table_allows_lands_where_the_table_says(
    gateway: Gateway, start: Status, action: Action
) -> None:
    order = new_order(gateway)
    drive(gateway, order.order_id, [*path_to(start), action])
    assert gateway.get(order.order_id).status is TRANSITIONS[(start, action)]


def test_unknown_orders_are_not_found_for_every_command_and_read(gateway: Gateway) -> None:
    calls = [
        lambda: gateway.get(42), lambda: gateway.cancel(42), lambda: gateway.execute(42),
        lambda: gateway.modify(42, quantity=1), lambda: gateway.events(42),
    ]  # fmt: skip
    for call in calls:
        with pytest.raises(oms.OrderNotFound) as refused:
            call()
        assert refused.value.code == "ORDER_NOT_FOUND" and "42" in refused.value.message


def test_a_second_order_with_the_same_client_order_id_is_refused(gateway: Gateway) -> None:
    new_order(gateway, client_order_id="dup-7")
    with pytest.raises(oms.DuplicateClientOrderId) as refused:
        new_order(gateway, client_order_id="dup-7")
    assert refused.value.code == "DUPLICATE_CLIENT_ORDER_ID" and "dup-7" in refused.value.message
    assert len(gateway.orders()) == 1


@pytest.mark.parametrize(
    ("fields", "bad"),
    [
        ({"quantity": 0}, ["quantity"]),
        ({"quantity": 10**9 + 1}, ["quantity"]),
        ({"price": "1.00001"}, ["price"]),
        ({"price": "0"}, ["price"]),
        ({"price": "1e12"}, ["price"]),
        ({"symbol": "BAD SYMBOL"}, ["symbol"]),
        ({"side": "HOLD", "quantity": -1}, ["side", "quantity"]),
        ({"order_type": "STOP"}, ["order_type"]),
    ],
)
def test_bad_fields_are_refused_by_name_and_store_no_order(
    gateway: Gateway, fields: dict[str, object], bad: list[str]
) -> None:
    with pytest.raises(oms.ValidationError) as refused:
        new_order(gateway, **fields)
    assert refused.value.code == "VALIDATION_ERROR" and refused.value.fields == bad
    assert gateway.orders() == []


def test_modify_needs_quantity_or_price(gateway: Gateway) -> None:
    order = new_order(gateway)
    with pytest.raises(oms.ValidationError) as refused:
        gateway.modify(order.order_id)
    assert refused.value.fields == ["body"]
    assert gateway.get(order.order_id) == order


def test_orders_are_sorted_by_id_and_filter_by_status_and_symbol(gateway: Gateway) -> None:
    a, b, c = new_order(gateway), new_order(gateway, symbol="TCS"), new_order(gateway)
    gateway.cancel(b.order_id)
    gateway.execute(c.order_id)
    assert [o.order_id for o in gateway.orders()] == [1, 2, 3]
    assert [o.order_id for o in gateway.orders(status="new")] == [a.order_id]
    assert [o.order_id for o in gateway.orders(symbol="infy")] == [a.order_id, c.order_id]
    assert gateway.orders(status="CANCELLED", symbol="INFY") == []
    assert {o.status for o in gateway.orders()} == {Status.NEW} | (TERMINAL & {Status.CANCELLED, Status.EXECUTED})


@pytest.mark.parametrize("filters", [{"status": "OPEN"}, {"symbol": "NO SPACES"}, {"status": ""}])
def test_a_bad_filter_is_refused_naming_the_filter(gateway: Gateway, filters: dict[str, str]) -> None:
    with pytest.raises(oms.ValidationError) as refused:
        gateway.orders(**filters)
    assert refused.value.fields == list(filters)


def test_events_are_oldest_first_and_record_refusals_with_their_code(gateway: Gateway) -> None:
    order = new_order(gateway)
    gateway.modify(order.order_id, quantity=10)
    with pytest.raises(oms.InvalidTransition):
        gateway.cancel(order.order_id)
    gateway.execute(order.order_id)
    events = gateway.events(order.order_id)
    assert [(e.action, e.accepted, e.reason) for e in events] == [
        (Action.CREATE, True, None), (Action.MODIFY, True, None),
        (Action.CANCEL, False, "INVALID_TRANSITION"), (Action.EXECUTE, True, None),
    ]  # fmt: skip
    assert [e.seq for e in events] == sorted(e.seq for e in events)
    assert events[1].changes == {"quantity": 10, "price": Decimal("1500.25")}
    assert events[3].changes == {"executed_quantity": 10, "executed_price": Decimal("1500.25")}
    assert events[2].from_status is Status.MODIFIED and events[2].to_status is None


def test_all_events_include_refused_creates_that_have_no_order(gateway: Gateway) -> None:
    new_order(gateway)
    with pytest.raises(oms.ValidationError):
        new_order(gateway, quantity=0)
    events = gateway.events()
    assert [(e.order_id, e.accepted, e.reason) for e in events] == [(1, True, None), (None, False, "VALIDATION_ERROR")]
    assert events[1].request is not None and events[1].request["quantity"] == 0


@pytest.mark.parametrize("store", STORES)
def test_both_transports_give_identical_orders_and_events_for_one_session(
    request: pytest.FixtureRequest, store: str
) -> None:
    def session(gw: Gateway) -> tuple[list[oms.Order], list[oms.OrderEvent]]:
        a = new_order(gw, client_order_id="s-1")
        b = gw.create(symbol="RELIANCE", side="SELL", quantity=7, order_type="MARKET")
        gw.modify(a.order_id, price="1490.0001")
        for bad in (lambda: gw.cancel(a.order_id), lambda: gw.execute(b.order_id), lambda: gw.get(99)):
            with pytest.raises(oms.OMSError):
                bad()
        gw.execute(b.order_id, price="2500.5")
        gw.execute(a.order_id)
        return gw.orders(), gw.events()

    with oms.open(":memory:", clock=oms.SimulatedClock()) as engine:
        embedded = session(engine)
    with (
        oms.open(fresh_book(request, store), clock=oms.SimulatedClock()) as engine,
        ThreadedServer(engine) as server,
        oms.connect(server.url) as remote,
    ):
        assert isinstance(remote, RemoteGateway)
        assert session(remote) == embedded


def test_a_remote_gateway_to_nowhere_names_the_url() -> None:
    from conftest import free_port

    url = f"http://127.0.0.1:{free_port()}"
    with oms.connect(url, timeout=2) as remote, pytest.raises(ServerUnreachable) as refused:
        remote.orders()
    assert isinstance(refused.value, oms.StoreError) and url in refused.value.message


def test_an_orders_history_starts_at_its_create_not_at_refusals_sent_to_its_id_before(gateway: Gateway) -> None:
    """Commands sent to an id before any order had it are refused ORDER_NOT_FOUND; once an
    order gets that id, they are in the whole log but not in its history."""
    for early in (lambda: gateway.execute(1), lambda: gateway.cancel(1)):
        with pytest.raises(oms.OrderNotFound):
            early()
    order = new_order(gateway)
    assert order.order_id == 1
    gateway.cancel(order.order_id)
    history = gateway.events(order.order_id)
    assert [(e.action.value, e.accepted) for e in history] == [("create", True), ("cancel", True)]
    whole = gateway.events()
    assert [(e.action.value, e.accepted, e.reason) for e in whole[:2]] == [
        ("execute", False, "ORDER_NOT_FOUND"), ("cancel", False, "ORDER_NOT_FOUND"),
    ]  # fmt: skip
