"""Helpers the analyst notebooks call, so that the notebooks themselves hold no logic.

Adapter layer. ``session()`` is the one way a notebook gets its book:

- inside the workbench (``oms lab`` exports ``OMS_URL``): the shared book, through the
  server that owns ``data/oms.duckdb`` -- every notebook of the workbench sees the same
  orders, and none of them opens the file (DuckDB takes one writer process, so a lock
  error cannot reach the analyst);
- anywhere else (nbval, the regeneration script, a plain ``jupyter lab``): a scratch
  in-memory book on the simulated clock, so every stored output is deterministic.

``scratch()`` always gives the scratch book (for checked, scripted sections).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import pandas as pd

import oms
from oms import views
from oms.commands import replay
from oms.engine import Engine
from oms.errors import OrderNotFound
from oms.gateway import Gateway, SqlCapable
from oms.lifecycle import allowed_actions, to_markdown, to_mermaid
from oms.model import Order
from oms.widgets import Table, describe, price_text

URL_VARIABLE = "OMS_URL"
TOKEN_VARIABLE = "OMS_API_TOKEN"  # the variable `oms serve` reads too

DEMO_ORDERS: tuple[dict[str, Any], ...] = (
    {"symbol": "INFY", "side": "BUY", "quantity": 100, "price": "1500.25", "client_order_id": "DEMO-1"},
    {"symbol": "TCS", "side": "SELL", "quantity": 50, "price": "3890.5", "client_order_id": "DEMO-2"},
    {"symbol": "INFY", "side": "SELL", "quantity": 75, "price": "1510", "client_order_id": "DEMO-3"},
    {"symbol": "RELIANCE", "side": "BUY", "quantity": 200, "order_type": "MARKET", "client_order_id": "DEMO-4"},
    {"symbol": "HDFCBANK", "side": "BUY", "quantity": 120, "price": "1625.75", "client_order_id": "DEMO-5"},
    {"symbol": "TCS", "side": "BUY", "quantity": 40, "price": "3875", "client_order_id": "DEMO-6"},
)
"""A small book: six orders over four symbols, both sides, both types."""


@dataclass(frozen=True)
class Book:
    """Where a notebook's orders live, for the first line a notebook prints."""

    gateway: Gateway
    shared: bool

    def __str__(self) -> str:
        if self.shared:
            return f"shared book at {self.gateway.target} (the workbench server)"
        return "scratch book: in-memory DuckDB, simulated clock from 2026-01-05T09:15:00Z"


def scratch() -> Engine:
    """A fresh in-memory engine on the simulated clock: ids from 1, fixed timestamps."""
    return oms.open(":memory:", clock=oms.SimulatedClock())


def session(*, demo: bool = False) -> Book:
    """The workbench's shared book when ``OMS_URL`` is set, else a scratch book (seeded
    with ``DEMO_ORDERS`` when ``demo``; a shared book is never seeded). Also sets pandas
    display options so wide frames print whole."""
    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 30)
    url = os.environ.get(URL_VARIABLE)
    if url:
        return Book(oms.connect(url, token=os.environ.get(TOKEN_VARIABLE) or None), shared=True)
    gateway = scratch()
    if demo:
        seed_demo_book(gateway)
    return Book(gateway, shared=False)


def sql(gateway: Gateway, query: str, params: list[Any] | None = None) -> pd.DataFrame:
    """``query`` -- one read-only SELECT -- against the book's DuckDB tables (``orders``,
    ``order_events``): the scratch book's, or the shared book's through the workbench
    server (``POST /sql``), with the same result (``views.sql``)."""
    return views.sql(gateway, query, params)


def seed_demo_book(gateway: Gateway) -> list[Order]:
    """Put ``DEMO_ORDERS`` into ``gateway`` and move some along the lifecycle: order 2
    modified, 3 cancelled, 4 executed at 2950, 5 modified then executed. Returns the
    orders as they end up."""
    created = [gateway.create(**spec) for spec in DEMO_ORDERS]
    ids = [o.order_id for o in created]
    gateway.modify(ids[1], quantity=60, price="3885")
    gateway.cancel(ids[2])
    gateway.execute(ids[3], price="2950")
    gateway.modify(ids[4], price="1620.5")
    gateway.execute(ids[4])
    return [gateway.get(i) for i in ids]


def orders_table(orders: list[Order]) -> pd.DataFrame:
    """A compact text table of orders (for printed, checked results)."""
    rows = [
        {
            "order_id": o.order_id,
            "symbol": o.symbol,
            "side": o.side.value,
            "type": o.order_type.value,
            "quantity": o.quantity,
            "price": price_text(o.price),
            "status": o.status.value,
            "version": o.version,
            "executed_price": price_text(o.executed_price),
            "allowed": " ".join(a.value for a in allowed_actions(o.status)) or "-",
        }
        for o in orders
    ]
    return pd.DataFrame(rows)


HISTORY_COLUMNS = ["order_id", "seq", "action", "from_status", "to_status", "accepted", "reason", "quantity",
                   "price", "executed_price", "at"]  # fmt: skip


def order_history(gateway: Gateway, order_id: int) -> Table:
    """``order_id``'s audit log, oldest first, under a line naming the order (``.frame``
    holds the events). When the book has no such order -- a shared book that holds other
    orders -- the line says so and no event is shown: never another order's."""
    try:
        order = gateway.get(order_id)
    except OrderNotFound:
        ids = sorted(o.order_id for o in gateway.orders())
        if not ids:
            held = "it has no orders yet"
        elif len(ids) == 1:
            held = f"it holds 1 order, id {ids[0]}"
        else:
            held = f"it holds {len(ids)} orders, ids {ids[0]} to {ids[-1]}"
        frame = views.to_frame(views.events_to_arrow([])).loc[:, HISTORY_COLUMNS]
        return Table(frame, f"no order {order_id} in this book ({held})")
    frame = views.events(gateway, order_id).loc[:, HISTORY_COLUMNS]
    return Table(frame, f"order {describe(order)}, oldest event first")


def lifecycle_mermaid() -> Any:
    """The lifecycle as a Markdown ```mermaid block (JupyterLab 4 draws it)."""
    from IPython.display import Markdown

    return Markdown(f"```mermaid\n{to_mermaid()}\n```")  # type: ignore[no-untyped-call]


def lifecycle_table() -> Any:
    """The lifecycle table as Markdown, generated from ``TRANSITIONS``."""
    from IPython.display import Markdown

    return Markdown(to_markdown())  # type: ignore[no-untyped-call]


def backend_check(gateway: Gateway) -> pd.DataFrame:
    """Three reads of the book compared: the gateway's orders, the ``orders`` rows in
    DuckDB (SQL, through the server on the shared book), the replay of ``order_events``
    (``views.verify_backend``). A gateway without SQL compares the other two."""
    if isinstance(gateway, SqlCapable):
        return views.verify_backend(gateway)
    via_gateway = views.orders_to_arrow(gateway.orders())
    rebuilt = replay([e for e in gateway.events() if e.accepted])
    via_replay = views.orders_to_arrow([rebuilt[k] for k in sorted(rebuilt)])
    rows = [
        ("gateway (get/orders)", via_gateway.num_rows, True),
        ("replay (order_events via API)", via_replay.num_rows, via_replay.equals(via_gateway)),
    ]
    return pd.DataFrame(rows, columns=["source", "orders", "matches_gateway"])


def status_chart(gateway: Gateway) -> Any:
    """A bar chart of quantity by symbol, stacked by status; returns the matplotlib Figure."""
    import matplotlib.pyplot as plt

    from oms.widgets import STATUS_COLOURS

    frame = views.blotter(gateway)
    fig, ax = plt.subplots(figsize=(7, 3.2), dpi=80)
    if len(frame):
        pivot = (
            frame.assign(quantity=frame["quantity"].astype("int64"))
            .pivot_table(index="symbol", columns="status", values="quantity", aggfunc="sum", fill_value=0)
            .sort_index()
        )
        bottom = pd.Series(0, index=pivot.index, dtype="int64")
        for status, (_background, text) in STATUS_COLOURS.items():
            if status.value in pivot.columns:
                ax.bar(pivot.index, pivot[status.value], bottom=bottom, label=status.value, color=text)
                bottom = bottom + pivot[status.value]
        ax.legend(fontsize=8)
    ax.set_ylabel("quantity")
    ax.set_title("Quantity by symbol and status")
    fig.tight_layout()
    plt.close(fig)
    return fig
