"""ipywidgets for analysts, over any gateway (embedded engine or remote server).

Adapter layer. Four parts and one composite:

- ``OrderTicket``   symbol, side, type, quantity, price, client order id, Submit; live
                    field feedback while typing, the refusal code inline after Submit;
- ``OrderActions``  pick an order; modify quantity/price, cancel, execute at an optional
                    price -- each button enabled only where ``lifecycle.allowed_actions``
                    allows it from the picked order's status;
- ``Blotter``       the orders as a styled HTML table (status colours);
- ``OrderHistory``  the picked order's audit log (``oms.views.events``);
- ``OrderEntry``    all four, refreshed together after every action.

Every button calls a public method (``submit``, ``modify``, ``cancel``, ``execute``,
``refresh``) that tests call directly; a refusal never raises out of a handler: it is
shown as ``CODE: message`` in the part's ``status`` HTML (``Button.click()`` would only
log an exception). Each part's box carries a CSS class (``order-ticket``,
``order-actions``, ``order-blotter``, ``order-history``) for browser tests.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

import ipywidgets as w
import pandas as pd

from oms import views
from oms.errors import OMSError, ValidationError
from oms.gateway import Gateway
from oms.lifecycle import COMMANDS, Action, Status, allowed_actions
from oms.model import Order, OrderType, Side
from oms.validation import validate_new_order

STATUS_COLOURS: dict[Status, tuple[str, str]] = {
    Status.NEW: ("#dbeafe", "#1e3a8a"),  # background, text
    Status.MODIFIED: ("#fef3c7", "#78350f"),
    Status.CANCELLED: ("#e5e7eb", "#374151"),
    Status.EXECUTED: ("#dcfce7", "#14532d"),
}
OK_STYLE = "color:#166534"
ERROR_STYLE = "color:#b91c1c"
BLOTTER_COLUMNS = (
    "order_id", "client_order_id", "symbol", "side", "order_type", "quantity", "price",
    "status", "version", "executed_quantity", "executed_price", "updated_at",
)  # fmt: skip
HISTORY_COLUMNS = ("seq", "action", "from_status", "to_status", "accepted", "reason", "quantity", "price",
                   "executed_price", "at")  # fmt: skip

Listener = Callable[[Order | None], None]


def describe(order: Order) -> str:
    """One line per order: ``#3 INFY BUY 100 @ 1500.25 LIMIT — NEW``."""
    price = f" @ {order.price}" if order.price is not None else ""
    head = f"#{order.order_id} {order.symbol} {order.side.value} {order.quantity}{price}"
    return f"{head} {order.order_type.value} — {order.status.value}"


def text(value: str | w.HTML) -> str:
    """The plain text of an HTML value or widget (tags dropped, ``<br>`` as newlines)."""
    raw = value.value if isinstance(value, w.HTML) else value
    return html.unescape(re.sub(r"<[^>]+>", "", re.sub(r"<br\s*/?>", "\n", raw)))


def _message(text: str, style: str) -> str:
    return f'<span style="{style}">{html.escape(text)}</span>'


def _refusal(error: OMSError) -> str:
    return _message(f"{error.code}: {error.message}", ERROR_STYLE)


def _text_field(value: str) -> str | None:
    value = value.strip()
    return value or None


def _quantity_input(text: str) -> int | str | None:
    """A whole number when the text is one; otherwise the raw text, for the gateway to refuse."""
    text = text.strip().replace("_", "").replace(",", "")
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        return text


def _price_input(text: str) -> Decimal | str | None:
    text = text.strip()
    if not text:
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        return text


class _Part:
    """A box of widgets with a ``status`` line and listeners told after each accepted action."""

    css_class = ""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.status = w.HTML(value="")
        self.status.add_class("oms-status")
        self._listeners: list[Listener] = []
        self.box: w.Box = w.VBox()

    def on_change(self, listener: Listener) -> None:
        """Call ``listener(order)`` after every accepted action of this part."""
        self._listeners.append(listener)

    def _changed(self, order: Order | None) -> None:
        for listener in self._listeners:
            listener(order)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.box._repr_mimebundle_(**kwargs)


class OrderTicket(_Part):
    """Enter a new order. ``submit()`` returns the created Order, or None when refused."""

    css_class = "order-ticket"

    def __init__(self, gateway: Gateway) -> None:
        super().__init__(gateway)
        self.symbol = w.Text(description="Symbol", placeholder="INFY")
        self.side = w.ToggleButtons(
            description="Side", options=[s.value for s in Side], value=Side.BUY.value,
            style={"button_width": "6.5em"},
        )  # fmt: skip
        self.order_type = w.Dropdown(
            description="Type", options=[t.value for t in OrderType], value=OrderType.LIMIT.value
        )
        self.quantity = w.Text(description="Quantity", placeholder="100")
        self.price = w.Text(description="Price", placeholder="1500.25")
        self.client_order_id = w.Text(description="Client id", placeholder="optional")
        self.submit_button = w.Button(description="Submit", button_style="primary", icon="paper-plane")
        self.feedback = w.HTML(value="")
        self.feedback.add_class("oms-feedback")
        self.submit_button.on_click(lambda _button: self.submit())
        for field in (self.symbol, self.side, self.order_type, self.quantity, self.price, self.client_order_id):
            field.observe(lambda _change: self.check(), names="value")
        self.order_type.observe(lambda _change: self._price_enabled(), names="value")
        self.box = w.VBox(
            [
                w.HTML("<b>Order ticket</b>"),
                self.symbol, self.side, self.order_type, self.quantity, self.price, self.client_order_id,
                self.feedback, self.submit_button, self.status,
            ]
        )  # fmt: skip
        self.box.layout = w.Layout(min_width="24em", margin="0 2em 0 0")
        self.box.add_class(self.css_class)
        self.check()

    def _price_enabled(self) -> None:
        market = self.order_type.value == OrderType.MARKET.value
        self.price.disabled = market
        if market:
            self.price.value = ""

    def request(self) -> dict[str, Any]:
        """The create request the fields describe (empty fields left out)."""
        fields = {
            "symbol": _text_field(self.symbol.value),
            "side": self.side.value,
            "order_type": self.order_type.value,
            "quantity": _quantity_input(self.quantity.value),
            "price": _price_input(self.price.value),
            "client_order_id": _text_field(self.client_order_id.value),
        }
        return {k: v for k, v in fields.items() if v is not None}

    def check(self) -> list[str]:
        """Validate the fields as typed; show one line per problem. Returns the bad fields."""
        try:
            validate_new_order(self.request())
        except ValidationError as e:
            request = self.request()
            lines = [
                f"{x['field']}: " + ("required" if x["field"] in ("symbol", "quantity") and x["field"] not in request
                                     else x["message"])
                for x in e.errors
            ]  # fmt: skip
            self.feedback.value = "<br>".join(_message(line, ERROR_STYLE) for line in lines)
            return e.fields
        self.feedback.value = _message("ready to submit", OK_STYLE)
        return []

    def submit(self) -> Order | None:
        """Send the ticket to the gateway. On success the status names the new order and
        the quantity, price and client id fields are cleared; on refusal the status shows
        ``CODE: message`` and nothing is cleared."""
        request = self.request()
        try:
            order = self.gateway.create(
                symbol=request.get("symbol", ""),
                side=request["side"],
                quantity=request.get("quantity"),  # type: ignore[arg-type]  # the gateway refuses bad input
                price=request.get("price"),
                order_type=request["order_type"],
                client_order_id=request.get("client_order_id"),
            )
        except OMSError as e:
            self.status.value = _refusal(e)
            return None
        self.status.value = _message(f"created {describe(order)}", OK_STYLE)
        self.client_order_id.value = ""
        self._changed(order)
        return order


class OrderActions(_Part):
    """Act on one existing order: modify, cancel, execute (as the lifecycle allows)."""

    css_class = "order-actions"

    def __init__(self, gateway: Gateway) -> None:
        super().__init__(gateway)
        self.order = w.Dropdown(description="Order", options=[], value=None, layout=w.Layout(width="32em"))
        narrow = {"width": "15em"}
        self.new_quantity = w.Text(description="Quantity", placeholder="new quantity", layout=narrow)
        self.new_price = w.Text(description="Price", placeholder="new limit price", layout=narrow)
        self.execution_price = w.Text(description="Exec price", placeholder="optional", layout=narrow)
        self.buttons: dict[Action, w.Button] = {
            Action.MODIFY: w.Button(description="Modify", icon="pencil"),
            Action.CANCEL: w.Button(description="Cancel", icon="times", button_style="warning"),
            Action.EXECUTE: w.Button(description="Execute", icon="check", button_style="success"),
        }
        assert tuple(self.buttons) == COMMANDS
        self.buttons[Action.MODIFY].on_click(lambda _b: self.modify())
        self.buttons[Action.CANCEL].on_click(lambda _b: self.cancel())
        self.buttons[Action.EXECUTE].on_click(lambda _b: self.execute())
        self.order.observe(lambda _change: self._enable(), names="value")
        self.box = w.VBox(
            [
                w.HTML("<b>Order actions</b>"),
                self.order,
                w.HBox([self.new_quantity, self.new_price, self.buttons[Action.MODIFY]]),
                w.HBox([self.execution_price, self.buttons[Action.EXECUTE], self.buttons[Action.CANCEL]]),
                self.status,
            ]
        )
        self.box.add_class(self.css_class)
        self.refresh()

    @property
    def selected(self) -> Order | None:
        """The picked order as the gateway holds it now (None when nothing is picked)."""
        if self.order.value is None:
            return None
        return self.gateway.get(self.order.value)

    def select(self, order_id: int | None) -> None:
        """Pick an order by id (refreshing the choices first if it is new)."""
        if order_id is not None and order_id not in {v for _label, v in self.order.options}:
            self.refresh()
        self.order.value = order_id
        self._enable()

    def refresh(self) -> None:
        """Reload the orders to pick from, keeping the current pick."""
        current = self.order.value
        orders = self.gateway.orders()
        self.order.options = [(describe(o), o.order_id) for o in orders]
        ids = {o.order_id for o in orders}
        self.order.value = current if current in ids else None
        self._enable()

    def allowed(self) -> tuple[Action, ...]:
        """The actions the lifecycle allows on the picked order."""
        order = self.selected
        return allowed_actions(order.status) if order is not None else ()

    def enabled(self) -> tuple[Action, ...]:
        """The actions whose buttons are enabled now, in table column order."""
        return tuple(a for a, button in self.buttons.items() if not button.disabled)

    def _enable(self) -> None:
        allowed = self.allowed()
        for action, button in self.buttons.items():
            button.disabled = action not in allowed

    def _run(self, verb: str, call: Callable[[int], Order]) -> Order | None:
        if self.order.value is None:
            self.status.value = _message("pick an order first", ERROR_STYLE)
            return None
        try:
            order = call(self.order.value)
        except OMSError as e:
            self.status.value = _refusal(e)
            self._enable()
            return None
        self.status.value = _message(f"{verb} {describe(order)}", OK_STYLE)
        self.refresh()
        self._changed(order)
        return order

    def modify(self) -> Order | None:
        """Modify the picked order with the quantity and/or price fields."""
        quantity, price = _quantity_input(self.new_quantity.value), _price_input(self.new_price.value)
        order = self._run("modified", lambda oid: self.gateway.modify(oid, quantity=quantity, price=price))  # type: ignore[arg-type]
        if order is not None:
            self.new_quantity.value = self.new_price.value = ""
        return order

    def cancel(self) -> Order | None:
        """Cancel the picked order."""
        return self._run("cancelled", self.gateway.cancel)

    def execute(self) -> Order | None:
        """Execute the picked order in full, at the execution price field if given."""
        price = _price_input(self.execution_price.value)
        order = self._run("executed", lambda oid: self.gateway.execute(oid, price=price))
        if order is not None:
            self.execution_price.value = ""
        return order


def _decimal_text(value: Any) -> str:
    return format(Decimal(value).normalize(), "f") if value is not None and not pd.isna(value) else ""


def _time_text(value: Any) -> str:
    """UTC ISO-8601 with milliseconds, as the API writes it."""
    return value.strftime("%Y-%m-%d %H:%M:%S.") + f"{value.microsecond // 1000:03d}" if not pd.isna(value) else ""


def style_orders(frame: pd.DataFrame) -> Any:
    """A blotter frame as a pandas Styler: status cells coloured, prices as exact text."""

    def colour(value: object) -> str:
        try:
            background, text = STATUS_COLOURS[Status(str(value))]
        except ValueError:
            return ""
        return f"background-color: {background}; color: {text}; font-weight: 600"

    exact = {c: _decimal_text for c in ("price", "executed_price") if c in frame.columns}
    times = {c: _time_text for c in ("created_at", "updated_at", "at") if c in frame.columns}
    return (
        frame.style.hide(axis="index")
        .map(colour, subset=[c for c in ("status", "from_status", "to_status") if c in frame.columns])
        .format(na_rep="")
        .format({**exact, **times}, na_rep="")
        .set_table_attributes('class="oms-table"')
        .set_table_styles([{"selector": "td, th", "props": "white-space: nowrap; padding: 2px 8px;"}])
        .set_uuid("oms")
    )


class StyledOrders:
    """Orders for a notebook cell: coloured HTML in JupyterLab, the plain table as text
    (what nbval compares; no object address in either)."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame

    def _repr_html_(self) -> str:
        html_text: str = style_orders(self.frame).to_html()
        return html_text

    def __repr__(self) -> str:
        return str(self.frame.to_string(index=False))


class Blotter(_Part):
    """The orders as a styled table; ``refresh()`` reloads it (the Refresh button too)."""

    css_class = "order-blotter"

    def __init__(self, gateway: Gateway) -> None:
        super().__init__(gateway)
        self.table = w.HTML(value="")
        self.table.add_class("oms-blotter-table")
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.refresh_button.on_click(lambda _b: self.refresh())
        self.frame: pd.DataFrame = pd.DataFrame()
        self.box = w.VBox([w.HBox([w.HTML("<b>Blotter</b>"), self.refresh_button]), self.table, self.status])
        self.box.add_class(self.css_class)
        self.refresh()

    def refresh(self) -> pd.DataFrame:
        """Reload the orders from the gateway; returns the frame shown."""
        frame = views.blotter(self.gateway)
        self.frame = frame.loc[:, list(BLOTTER_COLUMNS)]
        if len(self.frame):
            self.table.value = style_orders(self.frame).to_html()
        else:
            self.table.value = "<i>no orders yet</i>"
        counts = self.frame["status"].value_counts().sort_index() if len(self.frame) else {}
        self.status.value = html.escape(
            f"{len(self.frame)} order{'' if len(self.frame) == 1 else 's'}"
            + "".join(f" · {k} {v}" for k, v in dict(counts).items())
        )
        return self.frame


class OrderHistory(_Part):
    """The audit log of one order (accepted and refused commands), oldest first."""

    css_class = "order-history"

    def __init__(self, gateway: Gateway) -> None:
        super().__init__(gateway)
        self.order_id: int | None = None
        self.table = w.HTML(value="<i>pick an order</i>")
        self.frame: pd.DataFrame = pd.DataFrame()
        self.box = w.VBox([w.HTML("<b>Order history</b>"), self.table])
        self.box.add_class(self.css_class)

    def show(self, order_id: int | None) -> pd.DataFrame:
        """Show ``order_id``'s events (nothing for None); returns the frame shown."""
        self.order_id = order_id
        if order_id is None:
            self.frame = pd.DataFrame()
            self.table.value = "<i>pick an order</i>"
            return self.frame
        self.frame = views.events(self.gateway, order_id).loc[:, list(HISTORY_COLUMNS)]
        self.table.value = style_orders(self.frame).set_uuid("oms-history").to_html()
        return self.frame

    def refresh(self) -> pd.DataFrame:
        return self.show(self.order_id)


class OrderEntry:
    """Ticket, actions, blotter and history of one gateway, kept in step: every accepted
    action refreshes the blotter and the order choices, and picks the order acted on."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.ticket = OrderTicket(gateway)
        self.actions = OrderActions(gateway)
        self.blotter = Blotter(gateway)
        self.history = OrderHistory(gateway)
        self.ticket.on_change(self._after)
        self.actions.on_change(self._after)
        self.actions.order.observe(lambda change: self.history.show(change["new"]), names="value")
        self.blotter.refresh_button.on_click(lambda _b: self._refresh_choices())
        self.box = w.VBox([w.HBox([self.ticket.box, self.actions.box]), self.blotter.box, self.history.box])
        self.box.add_class("order-entry")

    def _after(self, order: Order | None) -> None:
        self.blotter.refresh()
        self.actions.refresh()
        if order is not None:
            self.actions.select(order.order_id)
        self.history.refresh()

    def _refresh_choices(self) -> None:
        self.actions.refresh()
        self.history.refresh()

    def refresh(self) -> None:
        """Reload everything from the gateway (e.g. after another notebook changed the book)."""
        self.blotter.refresh()
        self.actions.refresh()
        self.history.refresh()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.box._repr_mimebundle_(**kwargs)


def order_entry(gateway: Gateway) -> OrderEntry:
    """The full order-entry panel over ``gateway``."""
    return OrderEntry(gateway)
