"""Order commands and the read of one order: ``create``, ``modify``, ``cancel``,
``execute`` (core) and ``get`` (read).

Besides what a step's ``expect`` names, every acknowledgement is held to the rules of
DESIGN.md for its command -- the table's status, version + 1, the terms a command must
keep, the fill at the limit or a better price, the echo of a create's fields, ids that
increase, timestamps in UTC with milliseconds that never go back -- so each case that
sends a command checks all of them. A refused command on a known order must leave it
unchanged; a refused create must create nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import Field, model_validator

from oms.certification.steps._base import (
    NAMED_IDS,
    CaseRun,
    OrderExpect,
    Refusal,
    Spec,
    StepKind,
    alias_field,
    register,
)
from oms.certification.values import StepFailed, diff, refusal, same, summary, text
from oms.errors import OMSError
from oms.lifecycle import TRANSITIONS, Action, Status
from oms.model import Order

COMMANDS = ("create", "modify", "cancel", "execute")
KEPT = ("order_id", "client_order_id", "symbol", "side", "order_type", "created_at")
"""What no command after the create may change."""


class CommandSpec(Spec):
    action: Literal["create", "modify", "cancel", "execute", "get"]
    order: str | None = None
    """An alias made by an earlier step, or ``unknown`` / ``far`` (ids that do not exist:
    the run's unknown id; one halfway to 2^63-1, ``CaseRun.far_id``)."""
    order_id: int | None = None
    """A literal id instead of an alias (0, -1, 2^63-1)."""
    input: dict[str, Any] = Field(default_factory=dict)
    as_: str | None = alias_field()
    expect: OrderExpect | None = None
    refuse: Refusal | None = None
    may_refuse: Refusal | None = None
    """Where DESIGN.md allows either: accepted (and then held to every rule and ``expect``)
    or refused with one of these codes (and then nothing changed)."""

    @model_validator(mode="after")
    def _consistent(self) -> CommandSpec:
        if self.action == "create":
            if self.order is not None or self.order_id is not None:
                raise ValueError("a create names no order")
        elif (self.order is None) == (self.order_id is None):
            raise ValueError(f"{self.action} needs exactly one of order (an alias, 'unknown' or 'far') and order_id")
        if self.expect is not None and self.refuse is not None:
            raise ValueError("a step expects an order or a refusal, not both")
        if self.refuse is not None and self.may_refuse is not None:
            raise ValueError("a step has refuse or may_refuse, not both")
        if self.action in ("cancel", "get") and self.input:
            raise ValueError(f"{self.action} takes no input")
        return self


@register
class Command(StepKind):
    names = ("create", "modify", "cancel", "execute", "get")
    Spec = CommandSpec
    needs_text = "core (get: read)"

    def needs(self, spec: Any) -> set[str]:
        return {"read"} if spec.action == "get" else {"core", "execute"} if spec.action == "execute" else {"core"}

    def uses(self, spec: Any) -> list[tuple[str, str]]:
        out = [(spec.order, spec.action)] if spec.order not in (None, *NAMED_IDS) else []
        if spec.expect is not None:
            e = spec.expect
            out += [
                (a, k)
                for k, a in (("same_as", e.same_as), ("id_after", e.id_after), ("updated_after", e.updated_after))
                if a
            ]
        return out

    def makes(self, spec: Any) -> list[str]:
        return [spec.as_] if spec.as_ else []

    def describe(self, spec: Any) -> str:
        parts = [spec.action]
        if spec.order is not None:
            parts.append(f"order={spec.order}")
        if spec.order_id is not None:
            parts.append(f"order_id={spec.order_id}")
        if spec.input:
            parts.append(", ".join(f"{k}={v!r}" for k, v in spec.input.items()))
        if spec.as_:
            parts.append(f"-> {spec.as_}")
        return " ".join(parts)

    def expected(self, spec: Any) -> str:
        if spec.refuse is not None:
            out = "refused " + str(spec.refuse.describe())
            if spec.action != "get" and spec.order not in (None, *NAMED_IDS):
                out += "; order unchanged"
            if spec.action == "create":
                out += "; nothing created"
            return out
        if spec.may_refuse is not None:
            accepted = str(spec.expect.describe()) if spec.expect and spec.expect.model_fields_set else "accepted"
            return f"{accepted}, or refused {spec.may_refuse.describe()} with the order unchanged"
        if spec.expect is not None and spec.expect.model_fields_set:
            return str(spec.expect.describe())
        return "accepted" if spec.action in COMMANDS else "the order as last acknowledged"

    def run(self, case: CaseRun, spec: Any) -> str:
        return run_command(case, spec.action, spec)


def run_command(case: CaseRun, action: str, spec: Any) -> str:
    """Send one command (or read) as ``spec`` says and check what comes back."""
    kwargs = {k: case.template(v) for k, v in spec.input.items()}
    before = case.aliases.get(spec.order) if spec.order else None
    refusable = spec.refuse is not None or spec.may_refuse is not None
    # "nothing created" is read off the listing; a face without one (FIX) shows the refusal only
    listed = refusable and action == "create" and case.offers("listing")
    book_before = _book_size(case, kwargs) if listed else None
    call: Callable[[], Order]
    if action == "create":
        call = lambda: case.gw.create(**kwargs)  # noqa: E731
    else:
        order_id = case.order_id(spec.order, spec.order_id)
        method = getattr(case.gw, action)
        call = (lambda: method(order_id)) if action in ("get", "cancel") else (lambda: method(order_id, **kwargs))
        if before is not None and action != "get":
            case.cells.append((before.status.value, action))
    try:
        order = call()
    except OMSError as e:
        refuse = spec.refuse or spec.may_refuse
        if refuse is None:
            raise StepFailed(f"refused {refusal(e)}") from None
        case.check_refusal(e, refuse)
        tail = ""
        if before is not None and action != "get":
            case.check_unchanged(before)  # raises StepFailed: nothing to chain to the refusal
            tail = "; order unchanged"
        if book_before is not None:
            after = _book_size(case, kwargs)
            if after != book_before:
                raise StepFailed(
                    f"refused {refusal(e)}, but the book went from {book_before} to {after} orders"
                ) from None
            tail = "; nothing created"
        return f"refused {refusal(e)}{tail}"
    if spec.refuse is not None:
        raise StepFailed(f"accepted: {summary(order)}; expected a refusal {spec.refuse.describe()}")
    problems = acknowledgement_problems(case, action, kwargs, before, order)
    if problems:
        raise StepFailed(f"{summary(order)}: " + "; ".join(problems))
    case.check_order(order, spec.expect)
    if action != "get" and case.offers("read"):  # what was acknowledged is what is there
        back = case.gw.get(order.order_id)
        changed = diff(order, back)
        if changed:
            raise StepFailed(f"{summary(order)}: GET /order/{order.order_id} then answers differently: {changed}")
    if action == "create":
        case.runner.saw_id(order.order_id)
    if spec.as_:
        case.aliases[spec.as_] = order
    elif spec.order in case.aliases:
        case.aliases[spec.order] = order
    return summary(order)


def _book_size(case: CaseRun, kwargs: dict[str, Any]) -> int:
    """How many orders could be the create's: those of its symbol when it is a valid one (a
    cheap filtered listing), else the whole book."""
    symbol = kwargs.get("symbol")
    if isinstance(symbol, str) and SYMBOL.fullmatch(symbol):
        return len(case.gw.orders(symbol=symbol))
    return len(case.gw.orders())


SYMBOL = re.compile(r"[A-Za-z0-9._-]{1,16}")
"""DESIGN.md's symbol rule: 1-16 letters, digits and . - _."""


def acknowledgement_problems(
    case: CaseRun, action: str, kwargs: dict[str, Any], before: Order | None, order: Order
) -> list[str]:
    """What an accepted answer breaks of DESIGN.md's rules for ``action``."""
    problems = _timestamp_problems(order) + state_problems(order)
    if action == "create":
        return problems + _create_problems(case, kwargs, order)
    if before is None:
        return problems
    if action == "get":
        changed = diff(before, order)
        return problems + ([f"differs from the order as last acknowledged: {changed}"] if changed else [])
    to = TRANSITIONS.get((before.status, Action(action)))
    if to is None:
        return [*problems, f"accepted, but the lifecycle has no ({before.status.value}, {action}) transition"]
    if order.status is not to:
        problems.append(f"status {order.status.value}, expected {to.value}")
    if order.version != before.version + 1:
        problems.append(f"version {order.version} after {before.version}, expected {before.version + 1}")
    kept = diff(before, order, KEPT)
    if kept:
        problems.append(f"{action} changed what it must keep: {kept}")
    if order.updated_at < before.updated_at:
        problems.append("updated_at went back")
    problems += _CHANGES[action](kwargs, before, order)
    return problems


def _create_problems(case: CaseRun, kwargs: dict[str, Any], order: Order) -> list[str]:
    problems = []
    echo = {
        "symbol": kwargs["symbol"].upper() if isinstance(kwargs.get("symbol"), str) else kwargs.get("symbol"),
        "side": kwargs.get("side"),
        "order_type": kwargs.get("order_type", "LIMIT"),
        "quantity": kwargs.get("quantity"),
        "price": kwargs.get("price"),
        "client_order_id": kwargs.get("client_order_id"),
        **case.assigned(order.order_id),  # what the face had to send (FIX: a ClOrdID)
    }
    for key, want in echo.items():
        if not same(getattr(order, key), _number(want) if key == "price" else want):
            problems.append(f"{key} is {text(getattr(order, key))}, but the create gave {text(want)}")
    fresh = {"status": Status.NEW, "version": 1, "executed_quantity": 0, "executed_price": None}
    for key, want in fresh.items():
        if not same(getattr(order, key), want):
            problems.append(f"a new order's {key} is {text(getattr(order, key))}, expected {text(want)}")
    if order.updated_at < order.created_at:
        problems.append("updated_at is before created_at")
    last = case.runner.last_id
    if last is not None and order.order_id <= last:
        problems.append(f"order_id {order.order_id} does not increase (an earlier create got {last})")
    return problems


def _modify(kwargs: dict[str, Any], before: Order, order: Order) -> list[str]:
    problems = []
    for key in ("quantity", "price"):
        given = kwargs.get(key) is not None  # null is no change (the step may allow a refusal instead)
        want = _number(kwargs[key]) if given else getattr(before, key)
        if not same(getattr(order, key), want):
            how = "given" if given else "kept"
            problems.append(f"{key} is {text(getattr(order, key))}, expected {text(want)} ({how})")
    return problems + _unchanged(before, order, ("executed_quantity", "executed_price"))


def _cancel(kwargs: dict[str, Any], before: Order, order: Order) -> list[str]:
    return _unchanged(before, order, ("quantity", "price", "executed_quantity", "executed_price"))


def _execute(kwargs: dict[str, Any], before: Order, order: Order) -> list[str]:
    problems = _unchanged(before, order, ("quantity", "price"))
    if order.executed_quantity != before.quantity:
        problems.append(f"executed_quantity {order.executed_quantity}, expected the whole {before.quantity}")
    given = _number(kwargs.get("price"))
    want = given if given is not None else before.price
    if want is not None and not same(order.executed_price, want):
        problems.append(f"executed_price {text(order.executed_price)}, expected {text(want)}")
    if before.price is not None and order.executed_price is not None:
        worse = (
            order.executed_price > before.price if before.side.value == "BUY" else order.executed_price < before.price
        )
        if worse:
            problems.append(
                f"filled at {text(order.executed_price)}, worse than the {before.side.value} limit {text(before.price)}"
            )
    return problems


_CHANGES = {"modify": _modify, "cancel": _cancel, "execute": _execute}


def _unchanged(before: Order, order: Order, fields: tuple[str, ...]) -> list[str]:
    changed = diff(before, order, fields)
    return [f"changed {changed}"] if changed else []


def state_problems(order: Order) -> list[str]:
    """What an order breaks of DESIGN.md's rules for any order in its status: a LIMIT order
    has a price and a MARKET order none; an EXECUTED order is filled in full at a price,
    any other has no fill; version at least 1."""
    problems = []
    if order.order_type.value == "LIMIT" and order.price is None:
        problems.append("a LIMIT order without a price")
    if order.order_type.value == "MARKET" and order.price is not None:
        problems.append(f"a MARKET order with a price ({text(order.price)})")
    if order.status is Status.EXECUTED:
        if order.executed_quantity != order.quantity or order.executed_price is None:
            problems.append(
                f"EXECUTED with {order.executed_quantity} of {order.quantity} at {text(order.executed_price)}"
            )
    elif order.executed_quantity or order.executed_price is not None:
        problems.append(f"{order.status.value} but filled {order.executed_quantity} @ {text(order.executed_price)}")
    if order.version < 1:
        problems.append(f"version {order.version}")
    return problems


def _timestamp_problems(order: Order) -> list[str]:
    problems = []
    for name in ("created_at", "updated_at"):
        at = getattr(order, name)
        offset = at.utcoffset()
        if offset is None or offset.total_seconds() != 0 or at.microsecond % 1000:
            problems.append(f"{name} {at.isoformat()} is not UTC with milliseconds")
    return problems


def _number(value: Any) -> Any:
    """A price as given in the data, as an exact number (strings stay strings if not numeric)."""
    if isinstance(value, str):
        try:
            return Decimal(value)
        except InvalidOperation:
            return value
    return value
