"""The order-entry desk over the FIX gateway, driven as a person would (``.value = ...``,
``.click()``): a real FIX 4.4 acceptor (``AcceptorThread``) on 127.0.0.1 over an embedded
engine on a DuckDB file in ``tmp_path``, reached through ``oms.connect("fix://...")``.
Nothing is mocked; every wait is bounded and waits for a report, never for time to pass."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import oms
from oms.engine import Engine
from oms.fix.acceptor import AcceptorThread, FixAcceptor
from oms.fix.gateway import FixGateway
from oms.lifecycle import Action, Status
from oms.widgets import OrderEntry, text


@dataclass
class Venue:
    engine: Engine
    fix: FixGateway


@pytest.fixture
def venue(tmp_path: Path) -> Iterator[Venue]:
    engine = oms.open(tmp_path / "book.duckdb", clock=oms.SimulatedClock())
    runner = AcceptorThread(FixAcceptor(engine, sender="OMS", targets=["CLIENT"], timestamps=engine.clock))
    port = runner.start()
    try:
        gateway = oms.connect(f"fix://127.0.0.1:{port}?sender=CLIENT&target=OMS", clock=engine.clock,
                              clordid_prefix="T")  # fmt: skip
        assert isinstance(gateway, FixGateway)
        try:
            yield Venue(engine, gateway)
        finally:
            gateway.close()
    finally:
        runner.stop()
        engine.close()


@pytest.fixture
def desk(venue: Venue) -> OrderEntry:
    return OrderEntry(venue.fix, auto_refresh=False)


def enter(desk: OrderEntry, **fields: str) -> None:
    desk.ticket.fill(**({"symbol": "INFY", "quantity": "100", "price": "1500.25"} | fields))
    desk.ticket.submit_button.click()


def types(venue: Venue, order_id: int) -> list[tuple[str, str]]:
    return [(r.direction, r.msg_type) for r in venue.fix.messages(order_id)]


def test_submit_over_fix_sends_a_new_order_single_and_the_venue_books_it(venue: Venue, desk: OrderEntry) -> None:
    enter(desk, client_order_id="FIX-1")
    assert text(desk.ticket.status) == "created #1 INFY BUY 100 @ 1500.25 LIMIT — NEW"
    booked = venue.engine.get(1)
    assert (booked.status, booked.client_order_id, str(booked.price)) == (Status.NEW, "FIX-1", "1500.25")
    assert types(venue, 1) == [("sent", "D"), ("received", "8")]
    assert desk.blotter.frame["order_id"].tolist() == [1]
    assert desk.ticket.symbol.value == ""  # cleared, as on the other faces


def test_modify_and_cancel_over_fix_are_replace_and_cancel_requests(venue: Venue, desk: OrderEntry) -> None:
    enter(desk)
    enter(desk, symbol="TCS", side="SELL", quantity="50", price="3890.5")
    desk.actions.select(1)
    desk.actions.new_price.value = "1499.5"
    desk.actions.buttons[Action.MODIFY].click()
    assert text(desk.actions.status) == "modified #1 INFY BUY 100 @ 1499.5 LIMIT — MODIFIED"
    booked = venue.engine.get(1)
    assert (str(booked.price), booked.status, booked.version) == ("1499.5", Status.MODIFIED, 2)

    desk.actions.select(2)
    desk.actions.buttons[Action.CANCEL].click()
    assert desk.actions.armed == (Action.CANCEL, 2)
    desk.actions.confirm_button.click()
    assert text(desk.actions.status) == "cancelled #2 TCS SELL 50 @ 3890.5 LIMIT — CANCELLED"
    assert venue.engine.get(2).status is Status.CANCELLED
    assert types(venue, 1) == [("sent", "D"), ("received", "8"), ("sent", "G"), ("received", "8")]
    assert types(venue, 2) == [("sent", "D"), ("received", "8"), ("sent", "F"), ("received", "8")]


def test_a_refusal_over_fix_is_shown_with_its_code_and_books_nothing(venue: Venue, desk: OrderEntry) -> None:
    enter(desk, client_order_id="DUP")
    enter(desk, client_order_id="DUP")
    assert text(desk.ticket.status).startswith("DUPLICATE_CLIENT_ORDER_ID: ")
    assert len(venue.engine.orders()) == 1
    desk.actions.select(1)
    desk.actions.buttons[Action.CANCEL].click()
    desk.actions.confirm_button.click()
    desk.actions.select(1)
    desk.actions.cancel()  # disabled now; called anyway, the venue refuses with an OrderCancelReject
    assert text(desk.actions.status).startswith("INVALID_TRANSITION: cannot cancel order 1")
    assert types(venue, 1)[-2:] == [("sent", "F"), ("received", "9")]


def test_execute_is_disabled_over_fix_and_says_why_instead_of_failing(venue: Venue, desk: OrderEntry) -> None:
    enter(desk)
    actions = desk.actions
    actions.select(1)
    execute = actions.buttons[Action.EXECUTE]
    assert actions.enabled() == (Action.MODIFY, Action.CANCEL)  # the lifecycle allows execute; FIX does not
    assert execute.disabled and execute.tooltip.startswith("Execute is not on the FIX face")
    assert text(actions.note).startswith("Execute is not on the FIX face: a fill is venue-internal")
    assert actions.execution_price.disabled
    assert "allows modify, cancel, execute (execute not on this face)" in text(actions.status)

    assert actions.arm(Action.EXECUTE) is False  # what a click would do, were it enabled
    assert actions.armed is None and text(actions.status).startswith("Execute is not on the FIX face")
    assert actions.execute() is None  # called by a script: the gateway's refusal, shown with its code
    assert text(actions.status).startswith("NOT_SUPPORTED: ")
    assert venue.engine.get(1).status is Status.NEW


def test_the_history_over_fix_lists_the_orders_fix_messages_instead_of_an_audit_log(
    venue: Venue, desk: OrderEntry
) -> None:
    enter(desk, client_order_id="H-1")
    history = desk.history
    assert text(history.status).startswith("The audit log is not on the FIX face")
    assert "Order history — its FIX messages" in history.box.children[0].value
    assert history.order_id == 1
    assert history.frame["MsgType (35)"].tolist() == ["D NewOrderSingle", "8 ExecutionReport"]
    assert history.frame["ExecType (150)"].tolist() == ["", "0 New"]
    assert "ERROR" not in history.table.value and "b91c1c" not in history.table.value


def test_a_fill_made_on_the_venue_reaches_the_desk_over_fix(venue: Venue, desk: OrderEntry) -> None:
    enter(desk)
    venue.engine.execute(1)
    filled = venue.fix.wait_for(1, "EXECUTED")
    assert (filled.executed_quantity, str(filled.executed_price), filled.version) == (100, "1500.25", 2)
    assert desk.blotter.poll() is True  # what auto-refresh does every second in a kernel
    assert desk.blotter.frame["status"].tolist() == ["EXECUTED"]
    desk.actions.select(1)
    assert desk.actions.enabled() == ()
    assert desk.history.frame["ExecType (150)"].tolist()[-1] == "F Trade"


def test_picking_orders_on_the_desk_sends_no_fix_message(venue: Venue, desk: OrderEntry) -> None:
    enter(desk)
    enter(desk, symbol="TCS")
    before = len(venue.fix.messages())
    for order_id in (1, 2, 1, None, 2):
        desk.actions.select(order_id)
    desk.refresh()
    assert len(venue.fix.messages()) == before  # read from the reports received, no OrderStatusRequest


def test_the_desk_on_the_engine_is_unchanged_by_the_fix_face(gw: Engine) -> None:
    desk = OrderEntry(gw, auto_refresh=False)
    desk.ticket.fill(symbol="INFY", quantity="100", price="1500.25")
    desk.ticket.submit()
    desk.actions.select(1)
    assert desk.actions.enabled() == (Action.MODIFY, Action.CANCEL, Action.EXECUTE)
    assert desk.actions.unsupported == {} and desk.actions.note.value == ""
    assert desk.actions.buttons[Action.EXECUTE].tooltip in (None, "")
    assert desk.history.no_audit is None and desk.history.frame["action"].tolist() == ["create"]
