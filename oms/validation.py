"""Input validation: raw values (Python or JSON) in, typed command fields out.

Pure core. Every check reports the field it concerns; all bad fields of one request are
reported together in one ValidationError (VALIDATION_ERROR). Checks that need the order
(a price on a MARKET order, an execution price against the limit) live in ``commands``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from oms.errors import ValidationError
from oms.model import PRICE_PLACES, OrderType, Side, canonical_decimal

SYMBOL_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,16}")
CLIENT_ORDER_ID_PATTERN = re.compile(r"[\x21-\x7e]{1,64}")  # printable ASCII, no spaces
MAX_QUANTITY = 10**9
MAX_PRICE = Decimal(10) ** 12

CREATE_FIELDS = ("symbol", "side", "order_type", "quantity", "price", "client_order_id")
MODIFY_FIELDS = ("quantity", "price")
EXECUTE_FIELDS = ("price",)


@dataclass(frozen=True, slots=True)
class NewOrder:
    symbol: str
    side: Side
    order_type: OrderType
    quantity: int
    price: Decimal | None
    client_order_id: str | None


@dataclass(frozen=True, slots=True)
class Amendment:
    quantity: int | None
    price: Decimal | None


MAX_SHOWN = 40


def shown(value: Any) -> str:
    """A bad value as a message shows it: JSON-like, never longer than MAX_SHOWN characters."""
    if value is None:
        text = "null"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = json.dumps(value[: MAX_SHOWN + 1], ensure_ascii=False)
    elif isinstance(value, int) and value.bit_length() > 128:  # str() of a huge int raises
        text = f"an integer of about {int(value.bit_length() * 0.30103)} digits"
    elif isinstance(value, (int, float, Decimal)):
        text = str(value)
    else:
        text = type(value).__name__
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 1] + "…"


class _Errors:
    """Collects one message per bad field."""

    def __init__(self) -> None:
        self.items: list[dict[str, str]] = []

    def add(self, field: str, message: str) -> None:
        self.items.append({"field": field, "message": message})

    def raise_if_any(self) -> None:
        if self.items:
            raise ValidationError(self.items)


def shown_name(name: Any) -> str:
    """A name the client sent (a body field, a query parameter) as an error's ``field``:
    as ``shown`` bounds it, without the quotes."""
    return shown(name).strip('"')


def _check_unknown(request: dict[str, Any], allowed: tuple[str, ...], errors: _Errors) -> None:
    for key in sorted(set(request) - set(allowed), key=str):
        errors.add(shown_name(key), f"unknown field; expected one of {', '.join(allowed)}")


def parse_quantity(value: Any, field: str = "quantity") -> int:
    """An integer 1..10^9 (bools and fractional numbers are refused)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"must be a whole number, got {shown(value)}", field)
    if not 1 <= value <= MAX_QUANTITY:
        raise ValidationError(f"must be between 1 and {MAX_QUANTITY:,}, got {value}", field)
    return value


# A price as text: ASCII digits, an optional point and exponent -- nothing Python's
# Decimal() would also take (spaces, underscores, other scripts' digits, "Infinity").
_PRICE_TEXT = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?", re.ASCII)


def parse_price(value: Any, field: str = "price") -> Decimal:
    """An exact decimal, 0 < price < 10^12, at most 4 decimal places -- as given: a value
    that would need rounding is refused, never rounded.

    Accepts Decimal, int, str and float (a float is read from its shortest repr, so
    1500.25 means exactly 1500.25). Text must be plain ASCII decimal notation (no spaces,
    underscores or other digits). Raises VALIDATION_ERROR naming ``field``."""
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, float, str)):
        raise ValidationError(f"must be a decimal number, got {shown(value)}", field)
    if isinstance(value, int):  # checked as an int: str() of a huge int would raise
        if value <= 0:
            raise ValidationError(f"must be greater than 0, got {shown(value)}", field)
        if value >= MAX_PRICE:
            raise ValidationError(f"must be less than 10^12, got {shown(value)}", field)
        return Decimal(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValidationError(f"must be finite, got {shown(value)}", field)
    if isinstance(value, str) and not _PRICE_TEXT.fullmatch(value):
        raise ValidationError(
            f"must be a decimal number such as 1500.25 (ASCII digits; no spaces, + or _), got {shown(value)}",
            field,
        )
    try:
        price = value if isinstance(value, Decimal) else Decimal(repr(value) if isinstance(value, float) else value)
    except InvalidOperation:
        raise ValidationError(f"must be a decimal number, got {shown(value)}", field) from None
    sign, digits, exponent = price.as_tuple()
    if not isinstance(exponent, int):
        raise ValidationError(f"must be finite, got {shown(value)}", field)
    # Decided on the digits and the exponent alone -- no decimal context, which would round
    # 1e-1000027 to 0 -- and before anything writes the value out in full.
    significant = len(digits)
    while significant > 1 and digits[significant - 1] == 0 and exponent < 0:
        significant, exponent = significant - 1, exponent + 1
    if not any(digits):
        raise ValidationError(f"must be greater than 0, got {shown(value)}", field)
    if sign:
        raise ValidationError(f"must be greater than 0, got {shown(value)}", field)
    if -exponent > PRICE_PLACES:
        raise ValidationError(f"at most {PRICE_PLACES} decimal places, got {shown(value)}", field)
    if significant + exponent > 12:  # more than 12 integer digits: 10^12 or beyond
        raise ValidationError(f"must be less than 10^12, got {shown(value)}", field)
    result = canonical_decimal(price)
    assert result is not None
    return result


def _parse_enum(value: Any, enum: type[Side] | type[OrderType], field: str, errors: _Errors) -> Any:
    choices = "|".join(m.value for m in enum)
    if isinstance(value, str) and value.upper() in enum.__members__:
        return enum(value.upper())
    errors.add(field, f"must be {choices}, got {shown(value)}")
    return None


def _collect(errors: _Errors, fn: Any, value: Any, field: str) -> Any:
    try:
        return fn(value, field)
    except ValidationError as e:
        errors.items += e.errors
        return None


def validate_new_order(request: dict[str, Any]) -> NewOrder:
    """Validate a create request; raises ValidationError naming every bad field."""
    errors = _Errors()
    _check_unknown(request, CREATE_FIELDS, errors)

    symbol = request.get("symbol")
    if not isinstance(symbol, str) or not SYMBOL_PATTERN.fullmatch(symbol):
        errors.add("symbol", f"must be 1-16 letters, digits or . - _, got {shown(symbol)}")
        symbol = None
    side = _parse_enum(request.get("side"), Side, "side", errors)
    raw_type = request.get("order_type")
    order_type = OrderType.LIMIT if raw_type is None else _parse_enum(raw_type, OrderType, "order_type", errors)
    quantity = _collect(errors, parse_quantity, request.get("quantity"), "quantity")

    raw_price = request.get("price")
    price = None
    if order_type is OrderType.MARKET and raw_price is not None:
        errors.add("price", "must be absent for a MARKET order")
    elif order_type is OrderType.LIMIT and raw_price is None:
        errors.add("price", "is required for a LIMIT order")
    elif raw_price is not None:
        price = _collect(errors, parse_price, raw_price, "price")

    client_order_id = request.get("client_order_id")
    if client_order_id is not None and (
        not isinstance(client_order_id, str) or not CLIENT_ORDER_ID_PATTERN.fullmatch(client_order_id)
    ):
        errors.add("client_order_id", f"must be 1-64 printable characters without spaces, got {shown(client_order_id)}")

    errors.raise_if_any()
    assert isinstance(symbol, str)
    return NewOrder(symbol.upper(), side, order_type, quantity, price, client_order_id)


def validate_amendment(request: dict[str, Any]) -> Amendment:
    """Validate a modify request: ``quantity`` and/or ``price``, at least one."""
    errors = _Errors()
    _check_unknown(request, MODIFY_FIELDS, errors)
    quantity = request.get("quantity")
    price = request.get("price")
    if quantity is None and price is None and not errors.items:
        errors.add("body", "give quantity and/or price to modify")
    if quantity is not None:
        quantity = _collect(errors, parse_quantity, quantity, "quantity")
    if price is not None:
        price = _collect(errors, parse_price, price, "price")
    errors.raise_if_any()
    return Amendment(quantity, price)


def validate_execution(request: dict[str, Any]) -> Decimal | None:
    """Validate an execute request: an optional ``price``."""
    errors = _Errors()
    _check_unknown(request, EXECUTE_FIELDS, errors)
    price = request.get("price")
    if price is not None:
        price = _collect(errors, parse_price, price, "price")
    errors.raise_if_any()
    return price


def validate_order_id(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(f"must be a positive whole number, got {shown(value)}", "order_id")
    return value
