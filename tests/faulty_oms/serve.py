"""Deliberately faulty OMS servers: a certification that cannot fail proves nothing.

    python tests/faulty_oms/serve.py FAULT --db PATH --port PORT

Each fault is our own REST API (``oms.api.create_app``) over our engine, bent in one
realistic way, so that everything else about the server is right and the pack must find
exactly this fault:

- ``cancel-modified``: the lifecycle table has one extra row, (MODIFIED, cancel) ->
  CANCELLED -- the FIX-style chained cancel/replace our rules forbid;
- ``forgets-on-restart``: keeps the book in memory and ignores ``--db``;
- ``500-on-bad-input``: trusts its input -- ``int()``/``Decimal()`` on the raw fields
  before validating, so bad input is silently coerced (quantity 1.5 -> 1) or crashes the
  conversion, answered as HTTP 500 INTERNAL_ERROR (through the API's error handler, so
  the connection stays open and the failures land on the same cases every run);
- ``idempotent-cancel``: answers a repeated cancel of a CANCELLED order with success
  instead of refusing it (the "idempotent DELETE" mistake).
"""

from __future__ import annotations

import argparse
import sys
from decimal import Decimal
from typing import Any

import uvicorn

import oms
from oms.api import create_app
from oms.errors import InvalidTransition, OMSError
from oms.lifecycle import TRANSITIONS, Action, Status

FAULTS = ("cancel-modified", "forgets-on-restart", "500-on-bad-input", "idempotent-cancel")


class Wrapper:
    """A gateway that delegates to the engine; faults override one method. No ``submit``:
    the API calls the typed methods, as it would for any foreign gateway."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    @property
    def target(self) -> str:
        return str(self.engine.target)

    def create(self, **kwargs: Any) -> oms.Order:
        return self.engine.create(**kwargs)

    def modify(self, order_id: int, **kwargs: Any) -> oms.Order:
        return self.engine.modify(order_id, **kwargs)

    def cancel(self, order_id: int) -> oms.Order:
        return self.engine.cancel(order_id)

    def execute(self, order_id: int, **kwargs: Any) -> oms.Order:
        return self.engine.execute(order_id, **kwargs)

    def get(self, order_id: int) -> oms.Order:
        return self.engine.get(order_id)

    def orders(self, **kwargs: Any) -> list[oms.Order]:
        return self.engine.orders(**kwargs)

    def events(self, order_id: int | None = None) -> list[oms.OrderEvent]:
        return self.engine.events(order_id)

    def close(self) -> None:
        self.engine.close()


class InternalError(OMSError):
    code = "INTERNAL_ERROR"
    http_status = 500


def _coerce(kwargs: dict[str, Any]) -> dict[str, Any]:
    try:
        if kwargs.get("quantity") is not None:
            kwargs["quantity"] = int(kwargs["quantity"])
        if kwargs.get("price") is not None:
            kwargs["price"] = Decimal(str(kwargs["price"]))
    except (ValueError, TypeError, ArithmeticError) as e:
        raise InternalError(f"internal error: {type(e).__name__}: {e}") from e
    return kwargs


class Trusting(Wrapper):
    """Converts raw fields itself before the engine sees them (the 500-on-bad-input fault)."""

    def create(self, **kwargs: Any) -> oms.Order:
        return self.engine.create(**_coerce(kwargs))

    def modify(self, order_id: int, **kwargs: Any) -> oms.Order:
        return self.engine.modify(order_id, **_coerce(kwargs))


class IdempotentCancel(Wrapper):
    def cancel(self, order_id: int) -> oms.Order:
        try:
            return self.engine.cancel(order_id)
        except InvalidTransition:
            order = self.engine.get(order_id)
            if order.status is Status.CANCELLED:
                return order
            raise


def build(fault: str, db: str) -> Any:
    if fault == "cancel-modified":
        TRANSITIONS[(Status.MODIFIED, Action.CANCEL)] = Status.CANCELLED
        return oms.open(db)
    if fault == "forgets-on-restart":
        return oms.open(":memory:")
    if fault == "500-on-bad-input":
        return Trusting(oms.open(db))
    return IdempotentCancel(oms.open(db))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("fault", choices=FAULTS)
    parser.add_argument("--db", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    gateway = build(args.fault, args.db)
    app = create_app(gateway, on_shutdown=gateway.close)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
