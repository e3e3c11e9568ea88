"""What a command does to an order: pure decisions, no I/O.

``decide`` takes a command, the order it targets (or None) and the clock's reading, and
returns the order as the command leaves it -- or raises the OMSError that refuses it.
Checks run in a fixed order, so every transport reports the same code for the same
input: the request's own fields (VALIDATION_ERROR), the order's existence
(ORDER_NOT_FOUND), the lifecycle table (INVALID_TRANSITION), then the checks that need
the order (VALIDATION_ERROR for a price on a MARKET order or a MARKET execution without
one, PRICE_OUTSIDE_LIMIT).
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from oms.errors import DuplicateClientOrderId, OrderNotFound, PriceOutsideLimit, ValidationError
from oms.lifecycle import INITIAL_STATUS, Action, next_status
from oms.model import Order, OrderEvent, OrderType, Side
from oms.validation import validate_amendment, validate_execution, validate_new_order


@dataclass(frozen=True, slots=True)
class Command:
    """One request to the OMS: the action, the target order (None for create), the input."""

    action: Action
    order_id: int | None = None
    request: dict[str, Any] = field(default_factory=dict)


def decide(
    command: Command,
    current: Order | None,
    *,
    at: datetime,
    next_order_id: int,
    client_order_ids: Container[str] = (),
) -> Order:
    """Return the order after ``command``; raise the OMSError that refuses it."""
    if command.action is Action.CREATE:
        new = validate_new_order(command.request)
        if new.client_order_id is not None and new.client_order_id in client_order_ids:
            raise DuplicateClientOrderId(new.client_order_id)
        return Order(
            order_id=next_order_id,
            client_order_id=new.client_order_id,
            symbol=new.symbol,
            side=new.side,
            order_type=new.order_type,
            quantity=new.quantity,
            price=new.price,
            status=INITIAL_STATUS,
            version=1,
            created_at=at,
            updated_at=at,
        )

    if command.action is Action.MODIFY:
        amendment = validate_amendment(command.request)
        order = _require(current, command)
        status = next_status(order.status, command.action, order.order_id)
        if amendment.price is not None and order.order_type is OrderType.MARKET:
            raise ValidationError(f"order {order.order_id} is a MARKET order and has no price to modify", "price")
        return replace(
            order,
            quantity=amendment.quantity if amendment.quantity is not None else order.quantity,
            price=amendment.price if amendment.price is not None else order.price,
            status=status,
            version=order.version + 1,
            updated_at=at,
        )

    if command.action is Action.CANCEL:
        if command.request:
            raise ValidationError(f"cancel takes no fields, got {', '.join(sorted(command.request))}", "body")
        order = _require(current, command)
        status = next_status(order.status, command.action, order.order_id)
        return replace(order, status=status, version=order.version + 1, updated_at=at)

    if command.action is Action.EXECUTE:
        price = validate_execution(command.request)
        order = _require(current, command)
        status = next_status(order.status, command.action, order.order_id)
        if order.order_type is OrderType.MARKET:
            if price is None:
                raise ValidationError(f"is required to execute MARKET order {order.order_id}", "price")
        else:
            assert order.price is not None
            if price is None:
                price = order.price
            worse = price > order.price if order.side is Side.BUY else price < order.price
            if worse:
                bound = "at most" if order.side is Side.BUY else "at least"
                raise PriceOutsideLimit(
                    f"cannot execute order {order.order_id} at {price}: "
                    f"a {order.side.value} limit of {order.price} needs a price {bound} {order.price}"
                )
        return replace(
            order,
            status=status,
            version=order.version + 1,
            executed_quantity=order.quantity,
            executed_price=price,
            updated_at=at,
        )

    raise ValidationError(f"unknown action {command.action!r}", "action")  # pragma: no cover


def _require(current: Order | None, command: Command) -> Order:
    if current is None:
        raise OrderNotFound(command.order_id)
    return current


def replay(events: Iterable[OrderEvent]) -> dict[int, Order]:
    """Rebuild every order from the accepted events alone, re-applying the lifecycle.

    Independent of the stored projection: status comes from the transition table,
    version from counting, fields from each event's changes. Raises InvalidTransition
    if the log holds a transition the table refuses.
    """
    orders: dict[int, Order] = {}
    for event in events:
        if not event.accepted:
            continue
        assert event.order_id is not None
        if event.action is Action.CREATE:
            c = event.changes
            orders[event.order_id] = Order(
                order_id=event.order_id,
                client_order_id=c["client_order_id"],
                symbol=c["symbol"],
                side=Side(c["side"]),
                order_type=OrderType(c["order_type"]),
                quantity=c["quantity"],
                price=c["price"],
                status=INITIAL_STATUS,
                version=1,
                created_at=event.at,
                updated_at=event.at,
            )
            continue
        order = orders[event.order_id]
        orders[event.order_id] = replace(
            order,
            **event.changes,
            status=next_status(order.status, event.action, order.order_id),
            version=order.version + 1,
            updated_at=event.at,
        )
    return orders
