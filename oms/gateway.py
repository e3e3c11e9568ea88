"""The order gateway: the one face that widgets, views, certification and the CLI use.

Two implementations: ``oms.engine.Engine`` (embedded, ``oms.open``) and
``oms.client.RemoteGateway`` (HTTP, ``oms.connect``). Both raise the same OMSError
subclasses with the same codes.

Beyond the gateway, small capabilities a gateway may offer, which callers ask for
(``isinstance(gw, SqlCapable)``) instead of asking which gateway they hold:

- ``SqlCapable`` -- read-only SQL over the book (``sql_arrow``): both gateways;
- ``JsonListing`` -- the order listing as ready JSON text, in pages (``orders_json``):
  the engine, which the REST API serves it from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self, runtime_checkable

from oms.lifecycle import Action
from oms.model import Order, OrderEvent

if TYPE_CHECKING:
    import pyarrow as pa

PriceInput = Decimal | int | float | str


# What each command of the gateway sends: the REST body, and the engine's command input.
def create_request(
    *,
    symbol: str,
    side: str,
    quantity: int,
    price: PriceInput | None = None,
    order_type: str = "LIMIT",
    client_order_id: str | None = None,
) -> dict[str, Any]:
    """The input of ``create``: the optional fields only when given."""
    request: dict[str, Any] = {"symbol": symbol, "side": side, "order_type": order_type, "quantity": quantity}
    if price is not None:
        request["price"] = price
    if client_order_id is not None:
        request["client_order_id"] = client_order_id
    return request


def modify_request(quantity: int | None, price: PriceInput | None) -> dict[str, Any]:
    """The input of ``modify``: the fields given (the command refuses none)."""
    return {k: v for k, v in (("quantity", quantity), ("price", price)) if v is not None}


def execute_request(price: PriceInput | None) -> dict[str, Any]:
    """The input of ``execute``: the price, when given (else the limit price applies)."""
    return {"price": price} if price is not None else {}


TOKEN_ENV = "OMS_API_TOKEN"
"""The environment variable that carries the REST API's bearer token."""


@runtime_checkable
class Gateway(Protocol):
    @property
    def target(self) -> str:
        """What this gateway talks to: a database path or a URL."""
        ...

    def create(
        self,
        *,
        symbol: str,
        side: str,
        quantity: int,
        price: PriceInput | None = None,
        order_type: str = "LIMIT",
        client_order_id: str | None = None,
    ) -> Order: ...

    def modify(self, order_id: int, *, quantity: int | None = None, price: PriceInput | None = None) -> Order: ...

    def cancel(self, order_id: int) -> Order: ...

    def execute(self, order_id: int, *, price: PriceInput | None = None) -> Order: ...

    def get(self, order_id: int) -> Order: ...

    def orders(self, *, status: str | None = None, symbol: str | None = None) -> list[Order]: ...

    def events(self, order_id: int | None = None) -> list[OrderEvent]: ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


@runtime_checkable
class SqlCapable(Protocol):
    """Read-only SQL over the book's DuckDB tables (``orders``, ``order_events``, ...)."""

    def sql_arrow(self, query: str, params: Sequence[Any] | None = None) -> pa.Table:
        """The rows of one SELECT as an Arrow table, the same on every transport. Raises
        SQL_REFUSED (anything that could write or reach beyond the book: nothing ran),
        SQL_ERROR, SQL_TIMEOUT, SQL_TOO_LARGE, VALIDATION_ERROR (a bad parameter)."""
        ...


@runtime_checkable
class Subscribable(Protocol):
    """A gateway that reports every commit, whichever face made it (``Engine.subscribe``)."""

    def subscribe(self, callback: Callable[[list[tuple[Action, Order]]], None]) -> Callable[[], None]:
        """Call ``callback`` with each commit's accepted ``(action, order)`` results, off the
        command path; returns the function that unsubscribes it."""
        ...


class JsonPage(Protocol):
    @property
    def chunks(self) -> Iterator[bytes]: ...

    @property
    def next_after(self) -> int | None: ...


@runtime_checkable
class JsonListing(Protocol):
    """The order listing as the JSON text ``GET /orders`` sends, without an Order per row."""

    def orders_json(
        self,
        *,
        status: str | None = None,
        symbol: str | None = None,
        after: int | None = None,
        limit: int | None = None,
    ) -> JsonPage:
        """The orders after ``after`` (sorted by id, filtered, at most ``limit``) as the
        chunks of one JSON array, and the id to page on from when more remain. Raises
        VALIDATION_ERROR for a bad filter."""
        ...
