"""The order gateway: the one face that widgets, views, certification and the CLI use.

Two implementations: ``oms.engine.Engine`` (embedded, ``oms.open``) and
``oms.client.RemoteGateway`` (HTTP, ``oms.connect``). Both raise the same OMSError
subclasses with the same codes.
"""

from __future__ import annotations

from decimal import Decimal
from types import TracebackType
from typing import Protocol, Self, runtime_checkable

from oms.model import Order, OrderEvent

PriceInput = Decimal | int | float | str

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
