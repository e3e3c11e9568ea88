"""The analyst widgets, driven as a person would: ``.value = ...`` then ``.click()``.

Every test runs against a fresh ``oms.open(":memory:", clock=oms.SimulatedClock())``
(the ``gw`` fixture); nothing is mocked.
"""

from __future__ import annotations

import asyncio
import csv
from decimal import Decimal
from pathlib import Path

import ipywidgets as w
import pytest

import oms
from oms import notebook, views
from oms.engine import Engine
from oms.lifecycle import COMMANDS, Action, Status, allowed_actions
from oms.widgets import (
    STATUS_COLOURS,
    AutoRefresh,
    Blotter,
    OrderActions,
    OrderEntry,
    OrderHistory,
    OrderTicket,
    StyledOrders,
    describe,
    price_text,
    show,
    text,
)


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


ERROR_COLOUR = "#b91c1c"


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


def test_a_blank_ticket_opens_without_errors_and_checks_a_field_once_it_is_touched(gw: Engine) -> None:
    ticket = OrderTicket(gw)
    assert ERROR_COLOUR not in ticket.feedback.value
    assert text(ticket.feedback) == "to fill: symbol, quantity, price"
    ticket.symbol.value = "INFY!"
    assert text(ticket.feedback) == 'symbol: must be 1-16 letters, digits or . - _, got "INFY!"'
    assert "quantity" not in text(ticket.feedback)  # untouched: not an error yet
    ticket.symbol.value = ""
    assert text(ticket.feedback) == "symbol: required"


def test_submit_checks_every_field_even_untouched_ones(gw: Engine) -> None:
    ticket = OrderTicket(gw)
    ticket.symbol.value = "INFY"
    ticket.submit_button.click()
    assert text(ticket.feedback).splitlines() == ["quantity: required", "price: is required for a LIMIT order"]
    assert "VALIDATION_ERROR" in ticket.status.value and gw.orders() == []


def test_a_successful_submit_clears_the_ticket_so_a_second_click_enters_nothing(gw: Engine) -> None:
    ticket = OrderTicket(gw)
    fill(ticket, side="SELL", client_order_id="ONCE")
    assert "ready to submit" in ticket.feedback.value
    ticket.submit_button.click()
    assert [ticket.symbol.value, ticket.quantity.value, ticket.price.value, ticket.client_order_id.value] == [""] * 4
    assert ticket.side.value == "SELL" and ticket.order_type.value == "LIMIT"  # choices stay
    assert "ready to submit" not in ticket.feedback.value and ERROR_COLOUR not in ticket.feedback.value
    assert "created #1 INFY SELL 100 @ 1500.25 LIMIT — NEW" in ticket.status.value
    ticket.submit_button.click()  # the double click
    assert len(gw.orders()) == 1
    assert "VALIDATION_ERROR" in ticket.status.value


def test_fill_types_into_the_named_fields_and_refuses_unknown_ones(gw: Engine) -> None:
    ticket = OrderTicket(gw)
    ticket.fill(symbol="TCS", order_type="MARKET", quantity="5")
    assert ticket.request() == {"symbol": "TCS", "side": "BUY", "order_type": "MARKET", "quantity": 5}
    assert ticket.touched == {"symbol", "order_type", "quantity"}
    with pytest.raises(ValueError, match="no such ticket field: colour"):
        ticket.fill(colour="red")


def test_ticket_gives_inline_feedback_while_typing(gw: Engine) -> None:
    ticket = OrderTicket(gw)
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


def test_cancel_click_asks_for_confirmation_and_only_confirm_cancels(gw: Engine) -> None:
    order = gw.create(symbol="INFY", side="BUY", quantity=100, price="1500.25")
    actions = OrderActions(gw)
    actions.select(order.order_id)
    assert actions.confirm_row.layout.display == "none"
    actions.buttons[Action.CANCEL].click()
    actions.buttons[Action.CANCEL].click()  # a double click still only asks
    assert gw.get(order.order_id).status is Status.NEW
    assert actions.armed == (Action.CANCEL, 1) and actions.confirm_row.layout.display == "flex"
    assert text(actions.confirm_text) == "Confirm cancel of order 1 (INFY BUY 100 LIMIT, NEW)?"
    assert actions.confirm_button.description == "Confirm cancel"
    actions.confirm_button.click()
    assert gw.get(order.order_id).status is Status.CANCELLED
    assert actions.armed is None and actions.confirm_row.layout.display == "none"
    assert "cancelled #1 INFY BUY 100 @ 1500.25 LIMIT — CANCELLED" in actions.status.value
    assert enabled(actions) == set()


def test_execute_click_asks_for_confirmation_naming_the_price(gw: Engine) -> None:
    order = gw.create(symbol="INFY", side="BUY", quantity=100, price="1500.25")
    actions = OrderActions(gw)
    actions.select(order.order_id)
    actions.buttons[Action.EXECUTE].click()
    assert (
        text(actions.confirm_text)
        == "Confirm execute of order 1 (INFY BUY 100 LIMIT, NEW) in full at its limit 1500.25?"
    )
    actions.back_button.click()
    assert actions.armed is None and gw.get(1).status is Status.NEW
    actions.execution_price.value = "1499.50"
    actions.buttons[Action.EXECUTE].click()
    assert text(actions.confirm_text).endswith("in full at 1499.5?")
    assert actions.confirm() is not None
    assert str(gw.get(1).executed_price) == "1499.5"


@pytest.mark.parametrize("other", ["pick another order", "edit a field", "modify", "execute", "back"])
def test_any_other_action_disarms_the_confirmation(gw: Engine, other: str) -> None:
    first = gw.create(symbol="INFY", side="BUY", quantity=100, price="1500.25")
    gw.create(symbol="TCS", side="SELL", quantity=5, price="3890")
    actions = OrderActions(gw)
    actions.select(first.order_id)
    actions.buttons[Action.CANCEL].click()
    if other == "pick another order":
        actions.order.value = 2
    elif other == "edit a field":
        actions.new_quantity.value = "7"
    elif other == "modify":
        actions.new_price.value = "1490"
        actions.buttons[Action.MODIFY].click()
    elif other == "execute":
        actions.buttons[Action.EXECUTE].click()
    else:
        actions.back_button.click()
    assert actions.armed != (Action.CANCEL, 1)
    assert actions.confirm() is None or other == "execute"
    assert gw.get(1).status is not Status.CANCELLED


def test_confirm_with_nothing_armed_does_nothing_and_says_so(gw: Engine) -> None:
    gw.create(symbol="INFY", side="BUY", quantity=100, price="1500.25")
    actions = OrderActions(gw)
    actions.select(1)
    assert actions.confirm() is None
    assert "nothing to confirm" in actions.status.value and gw.get(1).status is Status.NEW


def test_the_status_line_describes_each_newly_picked_order(gw: Engine) -> None:
    notebook.seed_demo_book(gw)
    actions = OrderActions(gw)
    actions.select(1)
    actions.new_price.value = "1490"
    actions.modify()
    assert "modified #1" in actions.status.value
    actions.order.value = 3  # picked by hand in the dropdown
    assert text(actions.status) == "picked #3 INFY SELL 75 @ 1510 LIMIT — CANCELLED · CANCELLED is final"
    actions.select(6)
    assert text(actions.status) == "picked #6 TCS BUY 40 @ 3875 LIMIT — NEW · allows modify, cancel, execute"
    actions.select(None)
    assert actions.status.value == ""


def test_a_refresh_after_an_action_keeps_its_answer_in_the_status(gw: Engine) -> None:
    gw.create(symbol="INFY", side="BUY", quantity=100, price="1500.25")
    actions = OrderActions(gw)
    actions.select(1)
    actions.cancel()
    actions.refresh()
    assert "cancelled #1" in actions.status.value


def test_buttons_never_shrink_below_their_label(gw: Engine) -> None:
    ui = OrderEntry(gw)
    buttons = [*ui.actions.buttons.values(), ui.actions.confirm_button, ui.actions.back_button,
               ui.ticket.submit_button, ui.blotter.refresh_button, ui.blotter.export_button]  # fmt: skip
    for button in buttons:
        assert (button.layout.min_width, button.layout.width, button.layout.flex) == ("8.5em", "auto", "0 0 auto")
    rows = [c for c in ui.actions.box.children if isinstance(c, w.HBox)]
    assert rows and all(row.layout.flex_flow == "row wrap" for row in rows)


def test_execute_at_a_worse_price_is_refused_then_fills_at_the_limit(gw: Engine) -> None:
    order = gw.create(symbol="INFY", side="BUY", quantity=100, price="1500.25")
    actions = OrderActions(gw)
    actions.select(order.order_id)
    actions.execution_price.value = "1501"
    actions.buttons[Action.EXECUTE].click()
    actions.confirm_button.click()
    assert "PRICE_OUTSIDE_LIMIT" in actions.status.value
    assert gw.get(order.order_id).status is Status.NEW
    assert actions.execution_price.value == "1501"
    actions.execution_price.value = ""
    actions.buttons[Action.EXECUTE].click()
    actions.confirm_button.click()
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


def test_blotter_table_scrolls_sideways_with_short_headers_so_no_column_is_out_of_reach(gw: Engine) -> None:
    notebook.seed_demo_book(gw)
    blotter = Blotter(gw)
    table = blotter.table.value
    assert table.startswith('<div class="oms-scroll" style="overflow-x: auto; max-width: 100%;">')
    for header in ("id", "client id", "type", "qty", "exec qty", "exec price", "updated (UTC)"):
        assert f">{header}</th>" in table
    assert (blotter.table.layout.width, blotter.table.layout.overflow) == ("100%", "auto")  # the scroll box
    history = OrderHistory(gw)
    history.show(5)
    assert 'class="oms-scroll"' in history.table.value and ">at (UTC)</th>" in history.table.value


def test_blotter_filters_by_status_and_symbol_and_sorts_either_way(gw: Engine) -> None:
    notebook.seed_demo_book(gw)
    blotter = Blotter(gw)
    assert [label for label, _v in blotter.symbol_filter.options] == ["all", "HDFCBANK", "INFY", "RELIANCE", "TCS"]
    blotter.status_filter.value = "NEW"
    assert list(blotter.frame["order_id"]) == [1, 6]
    assert "2 of 6 orders shown (status NEW) · NEW 2" in blotter.status.value
    blotter.symbol_filter.value = "TCS"
    assert list(blotter.frame["order_id"]) == [6]
    blotter.status_filter.value = ""
    assert list(blotter.frame["order_id"]) == [2, 6]
    blotter.symbol_filter.value = "RELIANCE"
    blotter.status_filter.value = "CANCELLED"
    assert len(blotter.frame) == 0 and "no orders match the filters" in blotter.table.value
    blotter.status_filter.value = blotter.symbol_filter.value = ""
    blotter.sort_by.value = "price"
    assert list(blotter.frame["order_id"]) == [1, 3, 5, 6, 2, 4]  # ascending, the MARKET order (no price) last
    blotter.descending.value = True
    assert list(blotter.frame["order_id"]) == [2, 6, 5, 3, 1, 4]
    blotter.sort_by.value = "symbol"
    assert list(blotter.frame["symbol"]) == ["TCS", "TCS", "RELIANCE", "INFY", "INFY", "HDFCBANK"]
    assert list(blotter.frame["order_id"]) == [2, 6, 4, 1, 3, 5]  # ties by order id


def test_a_filter_on_a_symbol_survives_a_refresh(gw: Engine) -> None:
    notebook.seed_demo_book(gw)
    blotter = Blotter(gw)
    blotter.symbol_filter.value = "INFY"
    gw.create(symbol="INFY", side="BUY", quantity=1, price="1")
    blotter.refresh()
    assert blotter.symbol_filter.value == "INFY" and list(blotter.frame["order_id"]) == [1, 3, 7]


def test_export_csv_writes_the_rows_shown_in_the_printed_form_and_says_where(gw: Engine, tmp_path: Path) -> None:
    notebook.seed_demo_book(gw)
    blotter = Blotter(gw, export_dir=tmp_path / "exports")
    blotter.symbol_filter.value = "TCS"
    blotter.export_button.click()
    [written] = (tmp_path / "exports").glob("blotter-*Z.csv")
    assert f"wrote 2 orders to {written.resolve()}" in text(blotter.status)
    with written.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["order_id"] for r in rows] == ["2", "6"]
    assert (rows[0]["price"], rows[0]["executed_price"], rows[0]["updated_at"]) == (
        "3885", "", "2026-01-05T09:15:06.000Z"
    )  # fmt: skip
    again = blotter.export_csv()
    assert again is not None and again != written and again.exists()


def test_export_csv_to_a_place_that_cannot_be_written_says_why(gw: Engine, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    blotter = Blotter(gw)
    assert blotter.export_csv(blocker / "x.csv") is None
    assert "could not write" in blotter.status.value


def test_blotter_shows_at_most_500_rows_and_says_so(gw: Engine) -> None:
    for i in range(501):
        gw.create(symbol="INFY", side="BUY", quantity=1 + i, price="1")
    blotter = Blotter(gw)
    assert len(blotter.frame) == 501 and blotter.table.value.count("<tr>") == 501  # header row + 500
    assert "the table lists the first 500" in blotter.status.value


# ---- auto-refresh ----------------------------------------------------------------------


def test_a_change_made_elsewhere_is_seen_by_a_poll_and_refreshes_the_whole_desk(gw: Engine) -> None:
    ui = OrderEntry(gw)
    fill(ui.ticket)
    ui.ticket.submit()
    assert ui.blotter.poll() is False  # the desk's own change is no news
    gw.cancel(1)  # another notebook or the CLI changes the same book

    gw.create(symbol="WIPRO", side="SELL", quantity=5, price="480")
    assert ui.blotter.poll() is True
    assert list(ui.blotter.frame["status"]) == ["CANCELLED", "NEW"]
    assert [label for label, _v in ui.actions.order.options][1] == "#2 WIPRO SELL 5 @ 480 LIMIT — NEW"
    assert enabled(ui.actions) == set()  # order 1, still picked, is CANCELLED now
    assert text(ui.actions.status) == "picked #1 INFY BUY 100 @ 1500.25 LIMIT — CANCELLED · CANCELLED is final"
    assert list(ui.history.frame["action"]) == ["create", "cancel"]
    assert ui.blotter.poll() is False


def test_auto_refresh_is_off_where_no_event_loop_runs(gw: Engine) -> None:
    blotter = Blotter(gw)
    assert not blotter.poller.running and blotter.auto.value is False
    assert blotter.start_auto_refresh() is False


def test_auto_refresh_follows_the_book_on_a_running_loop_until_stopped(gw: Engine) -> None:
    async def scenario() -> tuple[list[int], bool, list[int]]:
        blotter = Blotter(gw, interval_s=0.01)
        assert blotter.poller.running and blotter.auto.value is True
        assert "auto-refresh every 0.01 s" in blotter.auto_status.value
        gw.create(symbol="INFY", side="BUY", quantity=1, price="1")
        for _ in range(500):  # bounded: at most 5 s
            await asyncio.sleep(0.01)
            if len(blotter.frame):
                break
        seen = list(blotter.frame["order_id"])
        blotter.auto.value = False  # the analyst unticks it
        stopped = not blotter.poller.running
        gw.create(symbol="INFY", side="BUY", quantity=2, price="1")
        await asyncio.sleep(0.05)
        return seen, stopped, list(blotter.frame["order_id"])

    seen, stopped, after_stop = asyncio.run(scenario())
    assert seen == [1] and stopped and after_stop == [1]


class Failing:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> bool:
        self.calls += 1
        raise oms.OMSError("the server went away")


def test_auto_refresh_never_raises_and_stops_after_repeated_failures() -> None:
    reports: list[tuple[str, bool]] = []
    check = Failing()

    async def scenario() -> AutoRefresh:
        poller = AutoRefresh(check, report=lambda m, p: reports.append((m, p)), interval_s=0.001, max_failures=3)
        assert poller.start()
        for _ in range(1000):
            await asyncio.sleep(0.001)
            if not poller.running:
                break
        return poller

    poller = asyncio.run(scenario())
    assert not poller.running and check.calls == 3
    assert reports[-1][1] is True and "stopped after 3 failures" in reports[-1][0]
    assert "the server went away" in reports[-1][0]


def test_a_slow_check_stops_auto_refresh_and_says_to_press_refresh() -> None:
    reports: list[str] = []
    poller = AutoRefresh(lambda: False, report=lambda m, _p: reports.append(m), slow_s=-1.0)
    assert poller.poll_once() is False
    assert not poller.running and reports == []  # never started: nothing to stop

    async def scenario() -> None:
        assert poller.start()
        poller.poll_once()

    asyncio.run(scenario())
    assert not poller.running and "press Refresh" in reports[-1]


def test_a_kernel_runs_at_most_a_few_pollers_the_oldest_stops(gw: Engine) -> None:
    async def scenario() -> list[bool]:
        blotters = [Blotter(gw, interval_s=10) for _ in range(AutoRefresh.MAX_RUNNING + 1)]
        running = [b.poller.running for b in blotters]
        for b in blotters:
            b.stop_auto_refresh()
        return running

    running = asyncio.run(scenario())
    assert running == [False] + [True] * AutoRefresh.MAX_RUNNING
    assert AutoRefresh._running == []


def test_a_poller_whose_event_loop_shuts_down_is_forgotten_and_unticked(gw: Engine) -> None:
    async def scenario() -> Blotter:
        return Blotter(gw, interval_s=10)

    blotter = asyncio.run(scenario())  # the loop ends with the poll still pending
    assert not blotter.poller.running and blotter.auto.value is False
    assert AutoRefresh._running == [] and "auto-refresh off" in blotter.auto_status.value


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
    ui.actions.confirm_button.click()
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


def test_order_history_names_the_order_it_shows(gw: Engine) -> None:
    notebook.seed_demo_book(gw)
    history = notebook.order_history(gw, 5)
    assert list(history.frame["action"]) == ["create", "modify", "execute"]
    assert set(history.frame["order_id"]) == {5}
    assert repr(history).splitlines()[0] == "order #5 HDFCBANK BUY 120 @ 1620.5 LIMIT — EXECUTED, oldest event first"
    assert list(notebook.sql(gw, "SELECT count(*) AS n FROM orders")["n"]) == [6]


def test_order_history_of_an_order_not_in_the_book_says_so_and_shows_no_other_order(gw: Engine) -> None:
    empty = notebook.order_history(gw, 5)
    assert len(empty.frame) == 0 and repr(empty).splitlines()[0] == "no order 5 in this book (it has no orders yet)"
    for spec in notebook.DEMO_ORDERS[:3]:
        gw.create(**spec)
    missing = notebook.order_history(gw, 5)
    assert len(missing.frame) == 0
    assert repr(missing).splitlines()[0] == "no order 5 in this book (it holds 3 orders, ids 1 to 3)"
    assert "no order 5" in missing._repr_html_() and "DEMO-3" not in missing._repr_html_()


# ---- one printed form -------------------------------------------------------------------


def test_prices_print_exactly_as_the_book_holds_them_missing_values_blank_times_in_utc(gw: Engine) -> None:
    notebook.seed_demo_book(gw)
    blotter = views.blotter(gw)
    printed = repr(show(blotter))
    header = printed.splitlines()[0].split()
    assert header[-4:] == ["created_at", "(UTC)", "updated_at", "(UTC)"]
    assert "1500.25" in printed and "3885 " in printed and "1620.5" in printed
    assert "1500.2500" not in printed and "<NA>" not in printed and "None" not in printed and "nan" not in printed
    history = repr(show(views.events(gw, 2)))
    assert "<NA>" not in history and "3885.0000" not in history and "3885" in history
    widget = Blotter(gw)
    assert "1500.25<" in widget.table.value and "1500.2500" not in widget.table.value
    assert "updated (UTC)" in widget.table.value and "nan" not in widget.table.value
    assert [price_text(v) for v in (Decimal("1499.5000"), Decimal("1510"), None, Decimal("0.0001"))] == [
        "1499.5", "1510", "", "0.0001"
    ]  # fmt: skip
    assert describe(gw.get(2)) == "#2 TCS SELL 60 @ 3885 LIMIT — MODIFIED"


def test_summaries_print_sums_in_the_same_form(gw: Engine) -> None:
    notebook.seed_demo_book(gw)
    printed = repr(show(views.summary(gw, "symbol")))
    assert "194460 " in printed and "194460.0000" not in printed and "<NA>" not in printed
