"""The analyst widgets, driven as a person would: ``.value = ...`` then ``.click()``.

Every test runs against a fresh ``oms.open(":memory:", clock=oms.SimulatedClock())``
(the ``gw`` fixture); nothing is mocked.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

import oms
from oms import notebook, views
from oms.engine import Engine
from oms.lifecycle import COMMANDS, Action, Status, allowed_actions
from oms.widgets import STATUS_COLOURS, Blotter, OrderActions, OrderEntry, OrderHistory, OrderTicket, StyledOrders


def fill(ticket: OrderTicket, symbol: str = "INFY", side: str = "BUY", order_type: str = "LIMIT",
         quantity: str = "100", price: str = "1500.25", client_order_id: str = "") -> None:  # fmt: skip
    ticket.symbol.value = symbol
    ticket.side.value = side
    ticket.order_type.value = order_type
    ticket.quantity.value = quantity
    ticket.price.value = price
    ticket.client_order_id.value = client_order_id


def enabled(actions: OrderActions) -> set[Action]:
    return {a for a, button in actions.buttons.items() if not button.disabled}


# ---- ticket ----------------------------------------------------------------------------


def test_submit_click_creates_the_order_and_names_it_in_the_status(gw: Engine) -> None:
    ticket = OrderTicket(gw)
    fill(ticket, client_order_id="T-1")
    ticket.submit_button.click()
    [order] = gw.orders()
    assert (order.order_id, order.symbol, order.quantity, str(order.price)) == (1, "INFY", 100, "1500.25")
    assert order.client_order_id == "T-1"
    assert "created #1 INFY BUY 100 @ 1500.25 LIMIT — NEW" in ticket.status.value
    assert ticket.client_order_id.value == ""  # a client id is used once


def test_ticket_gives_inline_feedback_while_typing(gw: Engine) -> None:
    ticket = OrderTicket(gw)
    assert "symbol: required" in ticket.feedback.value and "quantity: required" in ticket.feedback.value
    assert ticket.check() == ["symbol", "quantity", "price"]
    fill(ticket, price="1500.123456")
    assert ticket.check() == ["price"]
    assert "at most 4 decimal places" in ticket.feedback.value
    ticket.price.value = "1500.25"
    assert ticket.check() == []
    assert "ready to submit" in ticket.feedback.value


def test_refused_ticket_shows_the_code_and_creates_nothing(gw: Engine) -> None:
    ticket = OrderTicket(gw)
    fill(ticket, quantity="ten")
    ticket.submit_button.click()
    assert "VALIDATION_ERROR: quantity: must be a whole number" in ticket.status.value
    assert gw.orders() == []
    assert ticket.quantity.value == "ten"  # the analyst's input is kept to correct it


def test_duplicate_client_order_id_is_refused_with_its_code(gw: Engine) -> None:
    ticket = OrderTicket(gw)
    fill(ticket, client_order_id="DUP")
    assert ticket.submit() is not None
    fill(ticket, client_order_id="DUP")
    assert ticket.submit() is None
    assert "DUPLICATE_CLIENT_ORDER_ID" in ticket.status.value
    assert len(gw.orders()) == 1


def test_market_order_disables_and_clears_the_price(gw: Engine) -> None:
    ticket = OrderTicket(gw)
    fill(ticket, symbol="tcs", side="SELL", price="10")
    ticket.order_type.value = "MARKET"
    assert ticket.price.disabled and ticket.price.value == ""
    order = ticket.submit()
    assert order is not None and order.order_type is oms.OrderType.MARKET and order.price is None
    assert order.symbol == "TCS"
    ticket.order_type.value = "LIMIT"
    assert not ticket.price.disabled


# ---- actions ---------------------------------------------------------------------------


@pytest.mark.parametrize("status", list(Status))
def test_action_buttons_are_enabled_exactly_where_the_lifecycle_allows(gw: Engine, status: Status) -> None:
    book = {o.status: o.order_id for o in notebook.seed_demo_book(gw)}
    actions = OrderActions(gw)
    actions.select(book[status])
    assert enabled(actions) == set(allowed_actions(status))
    assert tuple(actions.buttons) == COMMANDS


def test_no_pick_means_no_action(gw: Engine) -> None:
    gw.create(symbol="INFY", side="BUY", quantity=1, price="1")
    actions = OrderActions(gw)
    assert actions.order.value is None and enabled(actions) == set()
    assert actions.cancel() is None
    assert "pick an order first" in actions.status.value


def test_modify_click_changes_quantity_and_price_then_only_execute_remains(gw: Engine) -> None:
    order = gw.create(symbol="INFY", side="BUY", quantity=100, price="1500.25")
    actions = OrderActions(gw)
    actions.select(order.order_id)
    actions.new_quantity.value = "150"
    actions.new_price.value = "1499.5"
    actions.buttons[Action.MODIFY].click()
    after = gw.get(order.order_id)
    assert (after.status, after.quantity, str(after.price), after.version) == (Status.MODIFIED, 150, "1499.5", 2)
    assert "modified #1 INFY BUY 150 @ 1499.5 LIMIT — MODIFIED" in actions.status.value
    assert enabled(actions) == {Action.EXECUTE}
    assert actions.new_quantity.value == actions.new_price.value == ""


def test_cancel_click_cancels_and_disables_every_button(gw: Engine) -> None:
    order = gw.create(symbol="INFY", side="BUY", quantity=100, price="1500.25")
    actions = OrderActions(gw)
    actions.select(order.order_id)
    actions.buttons[Action.CANCEL].click()
    assert gw.get(order.order_id).status is Status.CANCELLED
    assert enabled(actions) == set()


def test_execute_at_a_worse_price_is_refused_then_fills_at_the_limit(gw: Engine) -> None:
    order = gw.create(symbol="INFY", side="BUY", quantity=100, price="1500.25")
    actions = OrderActions(gw)
    actions.select(order.order_id)
    actions.execution_price.value = "1501"
    actions.buttons[Action.EXECUTE].click()
    assert "PRICE_OUTSIDE_LIMIT" in actions.status.value
    assert gw.get(order.order_id).status is Status.NEW
    assert actions.execution_price.value == "1501"
    actions.execution_price.value = ""
    actions.buttons[Action.EXECUTE].click()
    after = gw.get(order.order_id)
    assert (after.status, str(after.executed_price), after.executed_quantity) == (Status.EXECUTED, "1500.25", 100)


def test_a_refused_transition_called_directly_shows_invalid_transition(gw: Engine) -> None:
    order = gw.create(symbol="INFY", side="BUY", quantity=100, price="1500.25")
    gw.execute(order.order_id)
    actions = OrderActions(gw)
    actions.select(order.order_id)
    assert actions.cancel() is None  # the button is disabled; the method still answers
    assert "INVALID_TRANSITION: cannot cancel order 1: status is EXECUTED" in actions.status.value


# ---- blotter and history ---------------------------------------------------------------


def test_blotter_colours_each_status_and_counts_them(gw: Engine) -> None:
    notebook.seed_demo_book(gw)
    blotter = Blotter(gw)
    assert list(blotter.frame["order_id"]) == [1, 2, 3, 4, 5, 6]
    for status, (background, _text) in STATUS_COLOURS.items():
        assert status.value in blotter.table.value
        assert background in blotter.table.value
    assert "6 orders · CANCELLED 1 · EXECUTED 2 · MODIFIED 1 · NEW 2" in blotter.status.value


def test_blotter_refresh_button_shows_orders_entered_elsewhere(gw: Engine) -> None:
    blotter = Blotter(gw)
    assert "no orders yet" in blotter.table.value
    gw.create(symbol="WIPRO", side="SELL", quantity=5, price="480")
    assert "WIPRO" not in blotter.table.value
    blotter.refresh_button.click()
    assert "WIPRO" in blotter.table.value


def test_history_lists_accepted_and_refused_commands_oldest_first(gw: Engine) -> None:
    order = gw.create(symbol="INFY", side="BUY", quantity=100, price="1500.25")
    gw.modify(order.order_id, quantity=120)
    with pytest.raises(oms.InvalidTransition):
        gw.cancel(order.order_id)
    history = OrderHistory(gw)
    frame = history.show(order.order_id)
    assert list(frame["action"]) == ["create", "modify", "cancel"]
    assert list(frame["accepted"]) == [True, True, False]
    assert frame["reason"].iloc[-1] == "INVALID_TRANSITION"
    assert "INVALID_TRANSITION" in history.table.value


# ---- the composite ---------------------------------------------------------------------


def test_order_entry_refreshes_blotter_choices_and_history_after_every_action(gw: Engine) -> None:
    ui = OrderEntry(gw)
    fill(ui.ticket, symbol="INFY", quantity="100", price="1500.25")
    ui.ticket.submit_button.click()
    assert list(ui.blotter.frame["status"]) == ["NEW"]
    assert ui.actions.order.value == 1
    assert list(ui.history.frame["action"]) == ["create"]
    assert enabled(ui.actions) == {Action.MODIFY, Action.CANCEL, Action.EXECUTE}

    ui.actions.new_price.value = "1490"
    ui.actions.buttons[Action.MODIFY].click()
    assert list(ui.blotter.frame["status"]) == ["MODIFIED"]
    assert list(ui.history.frame["action"]) == ["create", "modify"]

    ui.actions.buttons[Action.EXECUTE].click()
    assert list(ui.blotter.frame["status"]) == ["EXECUTED"]
    assert ui.blotter.frame["executed_price"].iloc[0] == Decimal("1490")
    assert list(ui.history.frame["to_status"]) == ["NEW", "MODIFIED", "EXECUTED"]
    assert enabled(ui.actions) == set()


def test_order_entry_has_css_classes_the_browser_test_finds(gw: Engine) -> None:
    ui = OrderEntry(gw)
    assert "order-entry" in ui.box._dom_classes
    assert "order-ticket" in ui.ticket.box._dom_classes
    assert "order-blotter" in ui.blotter.box._dom_classes
    bundle = ui._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle


# ---- notebook helpers ------------------------------------------------------------------


def test_session_without_oms_url_is_a_fresh_scratch_book(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMS_URL", raising=False)
    book = notebook.session()
    assert not book.shared and isinstance(book.gateway, Engine) and book.gateway.target == ":memory:"
    assert book.gateway.create(symbol="A", side="BUY", quantity=1, price="1").order_id == 1
    assert str(book).startswith("scratch book")
    book.gateway.close()


def test_demo_book_passes_the_backend_check(gw: Engine) -> None:
    orders = notebook.seed_demo_book(gw)
    assert [o.status.value for o in orders] == ["NEW", "MODIFIED", "CANCELLED", "EXECUTED", "EXECUTED", "NEW"]
    check = notebook.backend_check(gw)
    assert list(check["orders"]) == [6, 6, 6]
    assert check["matches_gateway"].all()
    table = notebook.orders_table(orders)
    assert list(table["allowed"]) == ["modify cancel execute", "execute", "-", "-", "-", "modify cancel execute"]


def test_styled_orders_show_colours_as_html_and_the_plain_table_as_text(gw: Engine) -> None:
    notebook.seed_demo_book(gw)
    styled = StyledOrders(views.blotter(gw))
    assert STATUS_COLOURS[Status.EXECUTED][0] in styled._repr_html_()
    assert repr(styled).splitlines()[0].split()[:3] == ["order_id", "client_order_id", "symbol"]
    assert "0x" not in repr(styled)


def test_order_history_falls_back_to_the_latest_order_and_to_an_empty_frame(gw: Engine) -> None:
    assert len(notebook.order_history(gw, 5)) == 0
    notebook.seed_demo_book(gw)
    assert list(notebook.order_history(gw, 5)["action"]) == ["create", "modify", "execute"]
    assert set(notebook.order_history(gw, 99)["order_id"]) == {6}
    assert list(notebook.sql(gw, "SELECT count(*) AS n FROM orders")["n"]) == [6]
