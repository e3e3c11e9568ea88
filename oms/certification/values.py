"""How the pack compares and shows values: one place for equality of prices and
statuses, the one-line summaries of orders and refusals, and the outcome exceptions of a
step.

Pure (no I/O). Shared by the step kinds, the runner and the reports.
"""

from __future__ import annotations

from datetime import UTC
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any

from oms.errors import OMSError
from oms.model import Order, format_ts

ORDER_FIELDS = (
    "order_id",
    "client_order_id",
    "symbol",
    "side",
    "order_type",
    "quantity",
    "price",
    "status",
    "version",
    "executed_quantity",
    "executed_price",
    "created_at",
    "updated_at",
)


class StepFailed(Exception):
    """A step observed something other than expected; the message is what it observed."""


class NotSupported(Exception):
    """The target cannot do what a step needs (a faculty it lacks): the case is NOT RUN."""


class NotOffered(Exception):
    """The system does not offer what a step needs (a tier or an extension): the case is
    NOT APPLICABLE."""


def text(value: Any) -> str:
    """A value as a report shows it: null, true, exact decimals, timestamps as the API writes them."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, list | tuple):
        return "[" + ", ".join(text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {text(v)}" for k, v in value.items()) + "}"
    if hasattr(value, "tzinfo") and hasattr(value, "isoformat"):
        return format_ts(value.replace(tzinfo=value.tzinfo or UTC))
    return str(value)


def same(got: Any, want: Any) -> bool:
    """Equal as the contract means it: numbers by exact decimal value, enums by value,
    booleans only to booleans, null only to null."""
    if isinstance(got, Enum):
        got = got.value
    if want is None or got is None:
        return got is None and want is None
    if isinstance(got, bool) or isinstance(want, bool):
        return got is want or (got == want and type(got) is type(want))
    if isinstance(got, int | float | Decimal) or isinstance(want, int | float | Decimal):
        try:
            return Decimal(str(got)) == Decimal(str(want))
        except InvalidOperation:
            return False
    return str(got) == str(want)


def same_list(got: list[Any], want: list[Any]) -> bool:
    return len(got) == len(want) and all(same(g, w) for g, w in zip(got, want, strict=True))


def same_rows(got: list[tuple[Any, ...]], want: list[list[Any]]) -> bool:
    return len(got) == len(want) and all(same_list(list(g), list(w)) for g, w in zip(got, want, strict=True))


def summary(order: Order) -> str:
    """``#3 NEW v1 BUY 100 INFY @ 1500.25``."""
    price = f" @ {text(order.price)}" if order.price is not None else " MARKET"
    out = f"#{order.order_id} {order.status.value} v{order.version} {order.side.value} {order.quantity} "
    out += f"{order.symbol}{price}"
    if order.executed_quantity:
        out += f", filled {order.executed_quantity} @ {text(order.executed_price)}"
    return out


def refusal(e: OMSError) -> str:
    fields = getattr(e, "fields", None)
    return f"{e.code}" + (f" [{', '.join(fields)}]" if fields else "") + f": {e.message}"


def diff(a: Order, b: Order, fields: tuple[str, ...] = ORDER_FIELDS) -> str:
    """``price 10 -> 11, version 1 -> 2``; empty when the orders agree on ``fields``."""
    da, db = a.to_dict(), b.to_dict()
    return ", ".join(f"{k} {text(da[k])} -> {text(db[k])}" for k in fields if da[k] != db[k])


def brief(d: dict[str, Any] | None) -> str:
    if d is None:
        return "absent"
    return f"{d['status']} v{d['version']} qty {d['quantity']} price {text(d['price'])}"


def as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]
