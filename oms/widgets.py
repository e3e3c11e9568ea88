"""ipywidgets for analysts, over any gateway (embedded engine or remote server).

Adapter layer. Four parts and one composite:

- ``OrderTicket``   symbol, side, type, quantity, price, client order id, Submit; a field
                    is checked once the analyst has touched it (every field on Submit), the
                    refusal code shows inline, and a successful Submit clears the ticket;
- ``OrderActions``  pick an order; modify quantity/price, cancel, execute at an optional
                    price -- each button enabled only where ``lifecycle.allowed_actions``
                    allows it from the picked order's status. Cancel and Execute first arm a
                    confirmation row; only its Confirm button acts, anything else disarms;
- ``Blotter``       the orders as a styled HTML table (status colours) in a horizontal
                    scroll box: filter by status and symbol, sort by any column, export what
                    is shown to CSV, and refresh by itself when the book changes elsewhere
                    (``AutoRefresh``: a bounded poll on the kernel's event loop);
- ``OrderHistory``  the picked order's audit log (``oms.views.events``);
- ``OrderEntry``    all four, refreshed together after every action.

Over any gateway, the FIX one included (``oms.connect("fix://...")``): what a gateway
declares it cannot do (``Unsupported``: the FIX face has no execute and no audit log) is
shown as such -- the Execute button disabled, its tooltip and a note saying why, the
history part showing the order's FIX messages (``MessageJournal``) instead of an audit log
it cannot have -- never as a failure. A gateway that keeps the orders its reports described
(``ReportedOrders``) is read from that record, so picking an order sends no message.

Every value prints one way everywhere (``price_text``, ``time_text``, ``frame_text``):
prices exact as the book holds them (``1499.5``, never ``1499.5000``), missing values
blank (never ``<NA>``/``None``), timestamps in UTC with the column labelled so. ``show``
wraps any frame for a notebook cell in that form (coloured HTML, plain text for nbval).

Every button calls a public method (``submit``, ``modify``, ``arm``, ``confirm``,
``refresh``, ``export_csv``) that tests call directly; a refusal never raises out of a
handler: it is shown as ``CODE: message`` in the part's ``status`` HTML (``Button.click()``
would only log an exception). Each part's box carries a CSS class (``order-ticket``,
``order-actions``, ``order-blotter``, ``order-history``) for browser tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import html
import re
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import ipywidgets as w
import pandas as pd
import pyarrow as pa

from oms import views
from oms.errors import OMSError, ValidationError
from oms.gateway import Gateway
from oms.lifecycle import COMMANDS, Action, Status, allowed_actions
from oms.model import Order, OrderType, Side, canonical_decimal, format_ts
from oms.validation import validate_new_order

if TYPE_CHECKING:
    from collections.abc import Mapping

    from oms.fix.journal import Record

STATUS_COLOURS: dict[Status, tuple[str, str]] = {
    Status.NEW: ("#dbeafe", "#1e3a8a"),  # background, text
    Status.MODIFIED: ("#fef3c7", "#78350f"),
    Status.CANCELLED: ("#e5e7eb", "#374151"),
    Status.EXECUTED: ("#dcfce7", "#14532d"),
}
OK_STYLE = "color:#166534"
ERROR_STYLE = "color:#b91c1c"
HINT_STYLE = "color:#4b5563"
BLOTTER_COLUMNS = (
    "order_id", "client_order_id", "symbol", "side", "order_type", "quantity", "price",
    "status", "version", "executed_quantity", "executed_price", "updated_at",
)  # fmt: skip
BLOTTER_LABELS = {
    "order_id": "id", "client_order_id": "client id", "order_type": "type", "quantity": "qty",
    "version": "ver", "executed_quantity": "exec qty", "executed_price": "exec price", "updated_at": "updated",
}  # fmt: skip
"""Short headers for the desk's blotter, so that it fits beside JupyterLab's side panel."""
BLOTTER_MAX_ROWS = 500
"""The blotter table lists at most this many rows (the filters, the sort and the CSV export
see them all): a browser table of a whole large book helps nobody."""
HISTORY_COLUMNS = ("seq", "action", "from_status", "to_status", "accepted", "reason", "quantity", "price",
                   "executed_price", "at")  # fmt: skip
HISTORY_LABELS = {"from_status": "from", "to_status": "to", "quantity": "qty", "executed_price": "exec price"}
UTC_LABEL = " (UTC)"
"""Appended to the header of every timestamp column."""
TICKET_FIELDS = ("symbol", "side", "order_type", "quantity", "price", "client_order_id")
ALL = ""
"""The filter value that keeps every row."""
BUTTON_LAYOUT = {"width": "auto", "min_width": "8.5em", "flex": "0 0 auto"}
"""Buttons keep their label: they never shrink below it (no "M…")."""
WRAP = {"flex_flow": "row wrap", "align_items": "center"}
SCROLL_BOX = {"width": "100%", "margin": "2px 0", "overflow": "auto"}
"""A table widget as wide as the page and no wider: a wider table scrolls sideways in it."""

Listener = Callable[[Order | None], None]


# ---- what a gateway may declare about itself -----------------------------------------------


@runtime_checkable
class Unsupported(Protocol):
    """A gateway that names the Gateway methods it cannot carry out (they raise
    NOT_SUPPORTED), each with the reason to show (``FixGateway``: execute, events)."""

    @property
    def unsupported(self) -> Mapping[str, str]: ...


@runtime_checkable
class ReportedOrders(Protocol):
    """A gateway that keeps each order as its last report described it (``FixGateway``)."""

    def seen(self, order_id: int) -> Order | None:
        """The order as last reported, without asking anyone; None when no report came."""
        ...


@runtime_checkable
class MessageJournal(Protocol):
    """A gateway that keeps the protocol messages it exchanged (``FixGateway``)."""

    def messages(self, order_id: int | None = None) -> list[Record]: ...


def unsupported(gateway: object) -> Mapping[str, str]:
    """``{method: why}`` for what ``gateway`` declares it cannot do (empty for most)."""
    return gateway.unsupported if isinstance(gateway, Unsupported) else {}


# ---- one format for every printed value --------------------------------------------------


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def price_text(value: Any) -> str:
    """A price (or any decimal) as the book holds it: exact, no exponent, no trailing zeros
    (``1499.5``, ``1510``); blank when missing."""
    if _missing(value):
        return ""
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    canonical = canonical_decimal(number)
    return format(canonical, "f") if canonical is not None else ""


def time_text(value: Any) -> str:
    """A timestamp in UTC with milliseconds, ``2026-01-05 09:15:00.000``; blank when missing.
    (The column header says UTC.) A naive value is taken to be UTC already."""
    if _missing(value):
        return ""
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    day: str = stamp.strftime("%Y-%m-%d %H:%M:%S.")
    return day + f"{stamp.microsecond // 1000:03d}"


def plain_text(value: Any) -> str:
    """Any other value: its ``str``, blank when missing."""
    return "" if _missing(value) else str(value)


def _kind(series: pd.Series) -> str:
    dtype = series.dtype
    if isinstance(dtype, pd.ArrowDtype):
        if pa.types.is_decimal(dtype.pyarrow_dtype):
            return "decimal"
        if pa.types.is_timestamp(dtype.pyarrow_dtype):
            return "time"
        return "other"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "time"
    values = [v for v in series if not _missing(v)]
    if values and all(isinstance(v, Decimal) for v in values):
        return "decimal"
    if values and all(isinstance(v, datetime) for v in values):
        return "time"
    return "other"


FORMATTERS: dict[str, Callable[[Any], str]] = {"decimal": price_text, "time": time_text, "other": plain_text}


def column_labels(frame: pd.DataFrame, labels: dict[str, str] | None = None) -> dict[str, str]:
    """Header per column: ``labels`` (or the column name), `` (UTC)`` added to timestamps."""
    labels = labels or {}
    out = {}
    for column in frame.columns:
        label = labels.get(str(column), str(column))
        out[column] = label + UTC_LABEL if _kind(frame[column]) == "time" else label
    return out


def formatted(frame: pd.DataFrame, labels: dict[str, str] | None = None) -> pd.DataFrame:
    """``frame`` as text cells in the one printed form, under its display headers."""
    cells = {column: [FORMATTERS[_kind(frame[column])](v) for v in frame[column]] for column in frame.columns}
    return pd.DataFrame(cells, columns=list(frame.columns)).rename(columns=column_labels(frame, labels))


def frame_text(frame: pd.DataFrame, labels: dict[str, str] | None = None) -> str:
    """``frame`` as a plain text table in the one printed form (no index)."""
    if not len(frame.columns):
        return "(no rows)"
    table = formatted(frame, labels)
    if not len(table):
        return "  ".join(table.columns) + "\n(no rows)"
    return str(table.to_string(index=False))


def describe(order: Order) -> str:
    """One line per order: ``#3 INFY BUY 100 @ 1500.25 LIMIT — NEW``."""
    price = f" @ {price_text(order.price)}" if order.price is not None else ""
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


def _button(description: str, layout: dict[str, str] | None = None, **kwargs: Any) -> w.Button:
    return w.Button(description=description, layout=w.Layout(**BUTTON_LAYOUT, **(layout or {})), **kwargs)


def style_orders(frame: pd.DataFrame, labels: dict[str, str] | None = None) -> Any:
    """A frame as a pandas Styler in the one printed form: status cells coloured, prices
    exact, missing values blank, timestamp headers labelled UTC."""

    def colour(value: object) -> str:
        try:
            background, text = STATUS_COLOURS[Status(str(value))]
        except ValueError:
            return ""
        return f"background-color: {background}; color: {text}; font-weight: 600"

    headers = column_labels(frame, labels)
    shown = frame.rename(columns=headers)
    formats = {headers[c]: FORMATTERS[_kind(frame[c])] for c in frame.columns}
    coloured = [headers[c] for c in ("status", "from_status", "to_status") if c in frame.columns]
    uuid = hashlib.sha1(frame_text(frame, labels).encode()).hexdigest()[:10]  # distinct tables, stable files
    return (
        shown.style.hide(axis="index")
        .map(colour, subset=coloured)
        .format(formats, na_rep="")
        .set_table_attributes('class="oms-table"')
        .set_table_styles([{"selector": "td, th", "props": "white-space: nowrap; padding: 2px 6px;"}])
        .set_uuid(f"oms-{uuid}")
    )


def table_html(frame: pd.DataFrame, labels: dict[str, str] | None = None) -> str:
    """The styled table inside a box that scrolls sideways when the table is wider than the
    page (so no column is ever cut off out of reach)."""
    inner: str = style_orders(frame, labels).to_html()
    return f'<div class="oms-scroll" style="overflow-x: auto; max-width: 100%;">{inner}</div>'


class Table:
    """A frame for a notebook cell: coloured HTML in JupyterLab, the same cells as plain
    text (what nbval compares; no object address), optionally under a caption line. The
    data stays in ``frame`` with its exact types."""

    def __init__(self, frame: pd.DataFrame, caption: str | None = None) -> None:
        self.frame = frame
        self.caption = caption

    def _repr_html_(self) -> str:
        head = f"<p>{html.escape(self.caption)}</p>" if self.caption else ""
        body = table_html(self.frame) if len(self.frame) else "<p><i>(no rows)</i></p>"
        return head + body

    def __repr__(self) -> str:
        body = frame_text(self.frame)
        return f"{self.caption}\n{body}" if self.caption else body


StyledOrders = Table
"""The former name of ``Table``."""


def show(frame: pd.DataFrame, caption: str | None = None) -> Table:
    """``frame`` ready to display in a notebook cell, in the one printed form."""
    return Table(frame, caption)


# ---- the parts ---------------------------------------------------------------------------


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
    """Enter a new order. ``submit()`` returns the created Order, or None when refused.

    A field is checked once the analyst has changed it; Submit checks them all. After a
    successful Submit the text fields are cleared (side and type are kept), so a second
    click cannot enter the same order again."""

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
        self.submit_button = _button("Submit", {"align_self": "flex-start"}, button_style="primary", icon="paper-plane")
        self.feedback = w.HTML(value="")
        self.feedback.add_class("oms-feedback")
        self.touched: set[str] = set()
        self._check_all = False
        self._quiet = 0
        self.submit_button.on_click(lambda _button: self.submit())
        for name in TICKET_FIELDS:
            self._field(name).observe(lambda _change, name=name: self._edited(name), names="value")
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

    def _field(self, name: str) -> w.ValueWidget:
        field: w.ValueWidget = getattr(self, name)
        return field

    @contextlib.contextmanager
    def _programmatic(self) -> Iterator[None]:
        """Changes made by the ticket itself: they do not count as the analyst's touch."""
        self._quiet += 1
        try:
            yield
        finally:
            self._quiet -= 1

    def _edited(self, name: str) -> None:
        if not self._quiet:
            self.touched.add(name)
        self.check()

    def _price_enabled(self) -> None:
        market = self.order_type.value == OrderType.MARKET.value
        self.price.disabled = market
        if market:
            with self._programmatic():
                self.price.value = ""

    def fill(self, **values: str) -> None:
        """Type ``values`` into the fields by name (as the analyst would), e.g.
        ``fill(symbol="INFY", quantity="100", price="1500.25")``."""
        unknown = sorted(set(values) - set(TICKET_FIELDS))
        if unknown:
            raise ValueError(f"no such ticket field: {', '.join(unknown)}")
        for name in TICKET_FIELDS:  # type first: it decides whether price is enabled
            if name in values:
                self._field(name).value = values[name]

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

    def problems(self) -> list[tuple[str, str]]:
        """``(field, message)`` for every bad field of the ticket as it stands."""
        request = self.request()
        try:
            validate_new_order(request)
        except ValidationError as e:
            return [
                (x["field"], "required" if x["field"] in ("symbol", "quantity") and x["field"] not in request
                 else x["message"])
                for x in e.errors
            ]  # fmt: skip
        return []

    def check(self) -> list[str]:
        """Validate the fields; show one red line per problem of a touched field (of every
        field once Submit was pressed), a grey hint naming the untouched fields still to
        fill, or "ready to submit". Returns every bad field, touched or not."""
        problems = self.problems()
        shown = [(f, m) for f, m in problems if self._check_all or f in self.touched]
        if shown:
            self.feedback.value = "<br>".join(_message(f"{f}: {m}", ERROR_STYLE) for f, m in shown)
        elif problems:
            self.feedback.value = _message("to fill: " + ", ".join(f for f, _m in problems), HINT_STYLE)
        else:
            self.feedback.value = _message("ready to submit", OK_STYLE)
        return [f for f, _m in problems]

    def clear(self) -> None:
        """Empty the symbol, quantity, price and client id fields (side and type stay) and
        forget what was touched: the ticket is as blank as when it opened."""
        with self._programmatic():
            for field in (self.symbol, self.quantity, self.price, self.client_order_id):
                field.value = ""
        self.touched.clear()
        self._check_all = False
        self.check()

    def submit(self) -> Order | None:
        """Send the ticket to the gateway. On success the status names the new order and
        the ticket is cleared; on refusal every field is checked, the status shows
        ``CODE: message`` and nothing is cleared."""
        self._check_all = True
        self.check()
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
        self.clear()
        self._changed(order)
        return order


CONFIRMED: tuple[Action, ...] = (Action.CANCEL, Action.EXECUTE)
"""The actions whose button asks for confirmation before acting."""


class OrderActions(_Part):
    """Act on one existing order: modify, cancel, execute (as the lifecycle allows).

    The Cancel and Execute buttons ``arm`` a confirmation row ("Confirm cancel of order
    7?"); only its Confirm button (``confirm()``) acts. Picking another order, editing a
    field, Modify or Back disarms it. The methods ``cancel()`` and ``execute()`` act at
    once, for scripts. The status line describes the picked order until an action answers.

    An action the gateway declares it cannot do (``Unsupported``) keeps its button disabled
    whatever the order's status, with the reason as its tooltip and in a note beside it."""

    css_class = "order-actions"

    def __init__(self, gateway: Gateway) -> None:
        super().__init__(gateway)
        self.unsupported: dict[Action, str] = {a: why for a in COMMANDS if (why := unsupported(gateway).get(a.value))}
        self.order = w.Dropdown(description="Order", options=[], value=None, layout=w.Layout(width="32em"))
        narrow = {"width": "15em"}
        self.new_quantity = w.Text(description="Quantity", placeholder="new quantity", layout=narrow)
        self.new_price = w.Text(description="Price", placeholder="new limit price", layout=narrow)
        self.execution_price = w.Text(description="Exec price", placeholder="optional", layout=narrow)
        self.buttons: dict[Action, w.Button] = {
            Action.MODIFY: _button("Modify", icon="pencil"),
            Action.CANCEL: _button("Cancel", icon="times", button_style="warning"),
            Action.EXECUTE: _button("Execute", icon="check", button_style="success"),
        }
        assert tuple(self.buttons) == COMMANDS
        self.note = w.HTML(value="")
        self.note.add_class("oms-unsupported")
        for action, why in self.unsupported.items():
            self.buttons[action].tooltip = f"{action.value.capitalize()} is {why}"
            self.buttons[action].button_style = ""  # grey like any disabled button: it never enables here
        if Action.EXECUTE in self.unsupported:
            self.execution_price.disabled = True
            self.execution_price.placeholder = "not on this face"
        if self.unsupported:
            notes = [f"{action.value.capitalize()} is {why}" for action, why in self.unsupported.items()]
            self.note.value = "<br>".join(_message(note, HINT_STYLE) for note in notes)
        self.confirm_text = w.HTML(value="")
        self.confirm_text.add_class("oms-confirm-text")
        self.confirm_button = _button("Confirm", button_style="danger")
        self.back_button = _button("Back", icon="undo")
        self.confirm_row = w.HBox(
            [self.confirm_text, self.confirm_button, self.back_button], layout=w.Layout(display="none", **WRAP)
        )
        self.confirm_row.add_class("oms-confirm")
        self.armed: tuple[Action, int] | None = None
        self.buttons[Action.MODIFY].on_click(lambda _b: self.modify())
        self.buttons[Action.CANCEL].on_click(lambda _b: self.arm(Action.CANCEL))
        self.buttons[Action.EXECUTE].on_click(lambda _b: self.arm(Action.EXECUTE))
        self.confirm_button.on_click(lambda _b: self.confirm())
        self.back_button.on_click(lambda _b: self.disarm())
        for field in (self.new_quantity, self.new_price, self.execution_price):
            field.observe(lambda _change: self.disarm(), names="value")
        self._picked: int | None = None
        self._settling = False
        self._status_is_pick = False
        self._described: tuple[int, int] | None = None
        """(order id, version) the status line's last answer described."""
        self._pick_listeners: list[Callable[[int | None], None]] = []
        self.order.observe(lambda _change: self._settled(), names="value")
        self.box = w.VBox(
            [
                w.HTML("<b>Order actions</b>"),
                self.order,
                w.HBox([self.new_quantity, self.new_price, self.buttons[Action.MODIFY]], layout=w.Layout(**WRAP)),
                w.HBox(
                    [self.execution_price, self.buttons[Action.EXECUTE], self.buttons[Action.CANCEL]],
                    layout=w.Layout(**WRAP),
                ),
                self.note,
                self.confirm_row,
                self.status,
            ]
        )
        self.box.add_class(self.css_class)
        self.refresh()

    def on_pick(self, listener: Callable[[int | None], None]) -> None:
        """Call ``listener(order_id)`` whenever another order (or none) is picked."""
        self._pick_listeners.append(listener)

    @property
    def selected(self) -> Order | None:
        """The picked order as the gateway holds it now (None when nothing is picked)."""
        if self.order.value is None:
            return None
        if isinstance(self.gateway, ReportedOrders):  # its reports keep it current: no round trip
            seen = self.gateway.seen(self.order.value)
            if seen is not None:
                return seen
        return self.gateway.get(self.order.value)

    def select(self, order_id: int | None) -> None:
        """Pick an order by id (refreshing the choices first if it is new)."""
        if order_id is not None and order_id not in {v for _label, v in self.order.options}:
            self.refresh()
        self.order.value = order_id
        self._enable()

    def refresh(self, orders: Sequence[Order] | None = None) -> None:
        """Reload the orders to pick from (``orders`` if given, else the gateway's),
        keeping the current pick."""
        orders = self.gateway.orders() if orders is None else orders
        self._settling = True  # replacing the options moves the value around; only the end counts
        try:
            current = self.order.value
            self.order.options = [(describe(o), o.order_id) for o in orders]
            ids = {o.order_id for o in orders}
            self.order.value = current if current in ids else None
        finally:
            self._settling = False
        self._settled()

    def _settled(self) -> None:
        if self._settling:
            return
        if self.order.value != self._picked:
            self._picked = self.order.value
            self.disarm()
            self._enable()
            self._say_pick()
            for listener in self._pick_listeners:
                listener(self._picked)
            return
        self._enable()
        if self._status_is_pick:
            self._say_pick()  # the picked order may have moved on meanwhile
        elif self._described is not None:
            order = self.selected  # an answer about an order that has moved on since (a fill reported) is stale
            if order is not None and (order.order_id, order.version) != self._described:
                self._say_pick()

    def _say_pick(self) -> None:
        order = self.selected
        if order is None:
            self.status.value = ""
        else:
            allowed = allowed_actions(order.status)
            can = "allows " + ", ".join(a.value for a in allowed) if allowed else f"{order.status.value} is final"
            absent = [a.value for a in allowed if a in self.unsupported]
            if absent:
                can += f" ({', '.join(absent)} not on this face)"
            self.status.value = _message(f"picked {describe(order)} · {can}", HINT_STYLE)
        self._status_is_pick = True

    def _say(self, value: str, order: Order | None = None) -> None:
        self.status.value = value
        self._status_is_pick = False
        self._described = (order.order_id, order.version) if order is not None else None

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
            button.disabled = action not in allowed or action in self.unsupported
        if self.armed is not None and (self.armed[0] not in allowed or self.armed[1] != self.order.value):
            self.disarm()

    def arm(self, action: Action) -> bool:
        """What the Cancel and Execute buttons do: show the confirmation row for ``action``
        on the picked order. Returns False (and says why) when nothing is picked."""
        if action not in CONFIRMED:
            raise ValueError(f"{action.value} needs no confirmation")
        if action in self.unsupported:
            self._say(_message(f"{action.value.capitalize()} is {self.unsupported[action]}", ERROR_STYLE))
            return False
        order = self.selected
        if order is None:
            self._say(_message("pick an order first", ERROR_STYLE))
            return False
        detail = f"{order.symbol} {order.side.value} {order.quantity} {order.order_type.value}, {order.status.value}"
        question = f"Confirm {action.value} of order {order.order_id} ({detail})"
        if action is Action.EXECUTE:
            given = _price_input(self.execution_price.value)
            if given is not None:
                question += f" in full at {price_text(given) if isinstance(given, Decimal) else given}"
            elif order.price is not None:
                question += f" in full at its limit {price_text(order.price)}"
            else:
                question += " with no execution price"
        self.armed = (action, order.order_id)
        self.confirm_text.value = f"<b>{html.escape(question)}?</b>"
        self.confirm_button.description = f"Confirm {action.value}"
        self.confirm_button.button_style = "danger" if action is Action.CANCEL else "success"
        self.confirm_row.layout.display = "flex"
        return True

    def disarm(self) -> None:
        """Hide the confirmation row; nothing is done."""
        self.armed = None
        self.confirm_text.value = ""
        self.confirm_row.layout.display = "none"

    def confirm(self) -> Order | None:
        """What the Confirm button does: carry out the armed action. Returns the order, or
        None when nothing was armed or the gateway refused (the status says which)."""
        if self.armed is None:
            self._say(_message("nothing to confirm: press Cancel or Execute first", ERROR_STYLE))
            return None
        action, order_id = self.armed
        self.disarm()
        if order_id != self.order.value:  # pragma: no cover - a pick change disarms first
            return None
        return self.cancel() if action is Action.CANCEL else self.execute()

    def _run(self, verb: str, call: Callable[[int], Order]) -> Order | None:
        self.disarm()
        if self.order.value is None:
            self._say(_message("pick an order first", ERROR_STYLE))
            return None
        try:
            order = call(self.order.value)
        except OMSError as e:
            self._say(_refusal(e))
            self._enable()
            return None
        self.refresh()
        self._say(_message(f"{verb} {describe(order)}", OK_STYLE), order)
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
        """Cancel the picked order now (the Cancel button asks for confirmation first)."""
        return self._run("cancelled", self.gateway.cancel)

    def execute(self) -> Order | None:
        """Execute the picked order in full now, at the execution price field if given
        (the Execute button asks for confirmation first)."""
        price = _price_input(self.execution_price.value)
        order = self._run("executed", lambda oid: self.gateway.execute(oid, price=price))
        if order is not None:
            self.execution_price.value = ""
        return order


class AutoRefresh:
    """Call ``check()`` every ``interval_s`` seconds on the kernel's asyncio event loop, so
    that a widget follows a book changed elsewhere without a cell re-run.

    Bounded and quiet: it needs a running loop (a kernel; ``start()`` returns False
    without one, as in plain pytest), never lets an exception out (it is reported through
    ``report(message, problem)``), and stops by itself after ``max_failures`` failed checks
    in a row, after a check slower than ``slow_s`` (a huge book: press Refresh instead),
    after ``max_s`` seconds, or when more than ``MAX_RUNNING`` pollers run in one kernel
    (the oldest stops: a re-run cell does not stack pollers). ``stop()`` ends it at once."""

    MAX_RUNNING: ClassVar[int] = 4
    _running: ClassVar[list[AutoRefresh]] = []

    def __init__(
        self,
        check: Callable[[], bool],
        *,
        report: Callable[[str, bool], None],
        interval_s: float = 1.0,
        slow_s: float = 1.0,
        max_failures: int = 5,
        max_s: float = 12 * 3600,
    ) -> None:
        self.check = check
        self.report = report
        self.interval_s = interval_s
        self.slow_s = slow_s
        self.max_failures = max_failures
        self.max_s = max_s
        self.failures = 0
        self.polls = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None

    def start(self) -> bool:
        """Start polling; False (nothing started) when no event loop is running here."""
        if self._task is not None:
            return True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        while len(AutoRefresh._running) >= self.MAX_RUNNING:
            AutoRefresh._running[0].stop("auto-refresh off: a newer widget polls the book")
        self.failures = 0
        self._task = loop.create_task(self._loop())
        self._task.add_done_callback(self._ended)
        AutoRefresh._running.append(self)
        self.report(f"auto-refresh every {self.interval_s:g} s", False)
        return True

    def stop(self, reason: str = "auto-refresh off", *, problem: bool = False) -> None:
        """Stop polling (a no-op when stopped) and report ``reason``."""
        task, self._task = self._task, None
        if self in AutoRefresh._running:
            AutoRefresh._running.remove(self)
        if task is None:
            return
        try:
            current = asyncio.current_task()
        except RuntimeError:  # no loop runs here
            current = None
        if task is not current:
            with contextlib.suppress(RuntimeError):  # its loop is closed already
                task.cancel()
        self.report(reason, problem)

    def _ended(self, task: asyncio.Task[None]) -> None:
        """The task ended without ``stop()`` (its loop was shut down, say): forget it."""
        if self._task is task:
            self._task = None
            if self in AutoRefresh._running:
                AutoRefresh._running.remove(self)
            self.report("auto-refresh off", False)

    def poll_once(self) -> bool:
        """One check, never raising. Returns whether it changed anything."""
        self.polls += 1
        started = time.monotonic()
        try:
            changed = self.check()
        except Exception as e:  # a background poll must never raise into the kernel
            self.failures += 1
            message = f"auto-refresh: {type(e).__name__}: {e}"
            if self.failures >= self.max_failures:
                self.stop(f"{message} — stopped after {self.failures} failures (tick to retry)", problem=True)
            else:
                self.report(message, True)
            return False
        took = time.monotonic() - started
        if self.failures:
            self.failures = 0
            self.report(f"auto-refresh every {self.interval_s:g} s", False)
        if took > self.slow_s:
            self.stop(f"auto-refresh off: a check took {took:.1f} s on this book (press Refresh)", problem=True)
        return changed

    async def _loop(self) -> None:
        me = asyncio.current_task()
        deadline = time.monotonic() + self.max_s
        while self._task is me:
            await asyncio.sleep(self.interval_s)
            if self._task is not me:
                return
            if time.monotonic() > deadline:
                self.stop(f"auto-refresh off after {self.max_s / 3600:g} h (tick to restart)")
                return
            self.poll_once()


def book_signature(orders: Sequence[Order]) -> tuple[int, int]:
    """What changes with every accepted command: the number of orders and the sum of their
    versions (a create adds an order at version 1, every other accepted command adds 1)."""
    return len(orders), sum(o.version for o in orders)


class Blotter(_Part):
    """The orders as a styled table: filter (status, symbol), sort (any column, either
    way), ``export_csv()`` what is shown, ``refresh()`` (the Refresh button too). With
    ``auto_refresh`` it follows changes made elsewhere (another notebook, the CLI) within
    about ``interval_s`` seconds, in a kernel; listeners hear of such changes."""

    css_class = "order-blotter"

    def __init__(
        self,
        gateway: Gateway,
        *,
        auto_refresh: bool = True,
        interval_s: float = 1.0,
        export_dir: Path | str | None = None,
    ) -> None:
        super().__init__(gateway)
        self.export_dir = Path(export_dir) if export_dir is not None else Path("exports")
        self.table = w.HTML(value="", layout=w.Layout(**SCROLL_BOX))
        self.table.add_class("oms-blotter-table")
        small = {"width": "auto"}
        self.status_filter = w.Dropdown(
            description="Status", options=[("all", ALL)] + [(s.value, s.value) for s in Status], value=ALL,
            layout=small, style={"description_width": "auto"},
        )  # fmt: skip
        self.symbol_filter = w.Dropdown(
            description="Symbol", options=[("all", ALL)], value=ALL, layout=small, style={"description_width": "auto"}
        )
        self.sort_by = w.Dropdown(
            description="Sort", options=[(BLOTTER_LABELS.get(c, c), c) for c in BLOTTER_COLUMNS], value="order_id",
            layout=small, style={"description_width": "auto"},
        )  # fmt: skip
        self.descending = w.Checkbox(description="descending", value=False, indent=False, layout=small)
        self.refresh_button = _button("Refresh", icon="refresh")
        self.export_button = _button("Export CSV", icon="download")
        self.auto = w.Checkbox(description="auto-refresh", value=False, indent=False, layout=small)
        self.auto_status = w.HTML(value="")
        self.auto_status.add_class("oms-auto-status")
        self.book: pd.DataFrame = pd.DataFrame(columns=list(BLOTTER_COLUMNS))
        self.frame: pd.DataFrame = self.book
        self.signature: tuple[int, int] | None = None
        self._rendering = False
        self._syncing = False
        self.poller = AutoRefresh(self.poll, report=self._report, interval_s=interval_s)
        self.refresh_button.on_click(lambda _b: self.reload())
        self.export_button.on_click(lambda _b: self.export_csv())
        for control in (self.status_filter, self.symbol_filter, self.sort_by, self.descending):
            control.observe(lambda _change: self.render(), names="value")
        self.auto.observe(lambda change: self._auto_toggled(change["new"]), names="value")
        controls = w.HBox(
            [w.HTML("<b>Blotter</b>"), self.status_filter, self.symbol_filter, self.sort_by, self.descending,
             self.refresh_button, self.export_button, self.auto, self.auto_status],
            layout=w.Layout(**WRAP, grid_gap="0.3em 1em"),
        )  # fmt: skip
        self.box = w.VBox([controls, self.table, self.status], layout=w.Layout(width="100%"))
        self.box.add_class(self.css_class)
        self.refresh()
        if auto_refresh:
            self.auto.value = True  # starts polling in a kernel; stays unticked where no loop runs

    # -- data ----------------------------------------------------------------------------

    def refresh(self, orders: Sequence[Order] | None = None) -> pd.DataFrame:
        """Reload the orders (``orders`` if given, else from the gateway) and show them
        through the current filters and sort; returns the frame shown."""
        orders = list(self.gateway.orders()) if orders is None else list(orders)
        self.signature = book_signature(orders)
        self.book = views.to_frame(views.orders_to_arrow(orders)).loc[:, list(BLOTTER_COLUMNS)]
        symbols = sorted(set(self.book["symbol"].dropna()))
        current = self.symbol_filter.value
        self._rendering = True
        try:
            self.symbol_filter.options = [("all", ALL)] + [(s, s) for s in symbols]
            self.symbol_filter.value = current if current in symbols else ALL
        finally:
            self._rendering = False
        return self.render()

    def reload(self) -> pd.DataFrame:
        """What the Refresh button does: ``refresh()`` and tell the listeners."""
        frame = self.refresh()
        self._changed(None)
        return frame

    def poll(self) -> bool:
        """One look at the book: if it changed since the last refresh (another notebook,
        the CLI), refresh and tell the listeners. Returns whether it changed. Raises what
        the gateway raises (``AutoRefresh`` catches it)."""
        orders = self.gateway.orders()
        if book_signature(orders) == self.signature:
            return False
        self.refresh(orders)
        self._changed(None)
        return True

    def render(self) -> pd.DataFrame:
        """Apply the filters and the sort to the loaded book; returns the frame shown."""
        if self._rendering:
            return self.frame
        frame = self.book
        status, symbol = self.status_filter.value, self.symbol_filter.value
        if status != ALL:
            frame = frame[frame["status"] == status]
        if symbol != ALL:
            frame = frame[frame["symbol"] == symbol]
        key = self.sort_by.value
        keys = [key] if key == "order_id" else [key, "order_id"]
        ascending = [not self.descending.value] + [True] * (len(keys) - 1)
        frame = frame.sort_values(keys, ascending=ascending, na_position="last", kind="stable")
        self.frame = frame.reset_index(drop=True)
        if len(self.frame):
            self.table.value = table_html(self.frame.head(BLOTTER_MAX_ROWS), BLOTTER_LABELS)
        elif len(self.book):
            self.table.value = "<i>no orders match the filters</i>"
        else:
            self.table.value = "<i>no orders yet</i>"
        counts = self.frame["status"].value_counts().sort_index() if len(self.frame) else {}
        shown, total = len(self.frame), len(self.book)
        head = f"{total} order{'' if total == 1 else 's'}"
        if status != ALL or symbol != ALL:
            where = ", ".join(f"{k} {v}" for k, v in (("status", status), ("symbol", symbol)) if v != ALL)
            head = f"{shown} of {head} shown ({where})"
        if shown > BLOTTER_MAX_ROWS:
            head += f" · the table lists the first {BLOTTER_MAX_ROWS} (filter, or export CSV for all)"
        self.status.value = html.escape(head + "".join(f" · {k} {v}" for k, v in dict(counts).items()))
        return self.frame

    def export_csv(self, path: Path | str | None = None) -> Path | None:
        """Write the orders shown (filters and sort applied) to ``path`` (default: a new
        ``blotter-<UTC time>.csv`` under ``export_dir``) in the one printed form -- exact
        prices, blank missing values, ISO-8601 UTC times -- and say where. Returns the
        path, or None when the file could not be written (the status says why)."""
        if path is None:
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
            path = self.export_dir / f"blotter-{stamp}Z.csv"
            n = 1
            while path.exists():
                n += 1
                path = self.export_dir / f"blotter-{stamp}Z-{n}.csv"
        target = Path(path)
        out = formatted(self.frame)
        out.columns = list(self.frame.columns)
        for column in self.frame.columns:
            if _kind(self.frame[column]) == "time":
                out[column] = [format_ts(pd.Timestamp(v).to_pydatetime()) if not _missing(v) else ""
                               for v in self.frame[column]]  # fmt: skip
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            out.to_csv(target, index=False)
        except OSError as e:
            self.status.value = _message(f"could not write {target}: {e.strerror or e}", ERROR_STYLE)
            return None
        rows, where, here = len(out), target.resolve(), Path.cwd()
        shown = f"{where.relative_to(here)} in {here}" if where.is_relative_to(here) else str(where)
        self.status.value = _message(f"wrote {rows} order{'' if rows == 1 else 's'} to {shown}", OK_STYLE)
        return target

    # -- auto-refresh --------------------------------------------------------------------

    def _report(self, message: str, problem: bool) -> None:
        self.auto_status.value = _message(message, ERROR_STYLE if problem else HINT_STYLE)
        if not self.poller.running and self.auto.value:
            self._syncing = True  # the poller stopped itself: untick without stopping again
            try:
                self.auto.value = False
            finally:
                self._syncing = False

    def _auto_toggled(self, on: bool) -> None:
        if self._syncing:
            return
        if on:
            if not self.poller.start():
                self.auto.value = False
        else:
            self.poller.stop()

    def start_auto_refresh(self) -> bool:
        """Tick auto-refresh; False when no event loop runs here (outside a kernel)."""
        self.auto.value = True
        return self.poller.running

    def stop_auto_refresh(self) -> None:
        """Untick auto-refresh: polling stops at once."""
        self.auto.value = False
        self.poller.stop()


class OrderHistory(_Part):
    """The audit log of one order (accepted and refused commands), oldest first.

    Over a gateway without an audit log (``Unsupported`` names ``events``: the FIX face) it
    says so, and shows the order's protocol messages instead when the gateway keeps them
    (``MessageJournal``: one row per FIX message, ``oms.fix.journal.summary_frame``)."""

    css_class = "order-history"

    def __init__(self, gateway: Gateway) -> None:
        super().__init__(gateway)
        self.order_id: int | None = None
        self.table = w.HTML(value="<i>pick an order</i>", layout=w.Layout(**SCROLL_BOX))
        self.frame: pd.DataFrame = pd.DataFrame()
        self.no_audit = unsupported(gateway).get("events")
        self.journal = isinstance(gateway, MessageJournal) and self.no_audit is not None
        parts: list[w.Widget] = [w.HTML("<b>Order history</b>"), self.table]
        if self.no_audit is not None:
            title = "Order history — its FIX messages" if self.journal else "Order history"
            self.status.value = _message(f"The audit log is {self.no_audit}", HINT_STYLE)
            parts = [w.HTML(f"<b>{title}</b>"), self.status, self.table]
        self.box = w.VBox(parts, layout=w.Layout(width="100%"))
        self.box.add_class(self.css_class)

    def show(self, order_id: int | None) -> pd.DataFrame:
        """Show ``order_id``'s events (nothing for None); returns the frame shown."""
        self.order_id = order_id
        if order_id is None:
            self.frame = pd.DataFrame()
            self.table.value = "<i>pick an order</i>"
            return self.frame
        if self.no_audit is not None:
            return self._show_messages(order_id)
        try:
            self.frame = views.events(self.gateway, order_id).loc[:, list(HISTORY_COLUMNS)]
        except OMSError as e:
            self.frame = pd.DataFrame()
            self.table.value = _refusal(e)
            return self.frame
        self.table.value = table_html(self.frame, HISTORY_LABELS)
        return self.frame

    def _show_messages(self, order_id: int) -> pd.DataFrame:
        if not isinstance(self.gateway, MessageJournal):
            self.frame = pd.DataFrame()
            self.table.value = "<i>no history on this face</i>"
            return self.frame
        from oms.fix.journal import summary_frame

        self.frame = summary_frame(self.gateway.messages(order_id))
        if len(self.frame):
            self.table.value = table_html(self.frame)
        else:
            self.table.value = f"<i>no FIX message of order {order_id} kept</i>"
        return self.frame

    def refresh(self) -> pd.DataFrame:
        return self.show(self.order_id)


class OrderEntry:
    """Ticket, actions, blotter and history of one gateway, kept in step: every accepted
    action refreshes the blotter and the order choices, and picks the order acted on; a
    change made elsewhere (seen by the blotter's auto-refresh) refreshes them too."""

    def __init__(self, gateway: Gateway, *, auto_refresh: bool = True, export_dir: Path | str | None = None) -> None:
        self.gateway = gateway
        self.ticket = OrderTicket(gateway)
        self.actions = OrderActions(gateway)
        self.blotter = Blotter(gateway, auto_refresh=auto_refresh, export_dir=export_dir)
        self.history = OrderHistory(gateway)
        self.ticket.on_change(self._after)
        self.actions.on_change(self._after)
        self.actions.on_pick(self.history.show)
        self.blotter.on_change(lambda _order: self._elsewhere())
        top = w.HBox([self.ticket.box, self.actions.box], layout=w.Layout(flex_flow="row wrap"))
        self.box = w.VBox([top, self.blotter.box, self.history.box], layout=w.Layout(width="100%"))
        self.box.add_class("order-entry")

    def _after(self, order: Order | None) -> None:
        self.blotter.refresh()
        self.actions.refresh()
        if order is not None:
            self.actions.select(order.order_id)
        self.history.refresh()

    def _elsewhere(self) -> None:
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
