"""``replay``: the audit log, re-applied through the lifecycle table, must give the order
book the target reports (backend data verification over the contract).

Needs the audit tier only: the log is gathered per order (``GET /order/{id}/events`` for
every order ``GET /orders`` lists), or in one answer where ``GET /events`` is offered.
For every order, from the fields DESIGN.md says an event carries: its first accepted
event is the create (no status -> NEW, version 1); each accepted event moves from the
status the order had to the status the table gives, with the version after it counted
up by one; each refused event names the status it was refused in and a reason code, and
a refused INVALID_TRANSITION is one the table really refuses; the last status and
version, the modify's quantity and price and the execute's fill are the order's. (DESIGN
does not say whether seq is global or per order: only each order's order is checked.)
"""

from __future__ import annotations

from typing import Any, Literal

from oms.certification.steps._base import CaseRun, Spec, StepKind, register
from oms.certification.steps.audit import order_problems
from oms.certification.values import StepFailed, same, text
from oms.lifecycle import INITIAL_STATUS, TRANSITIONS, Action
from oms.model import Order, OrderEvent

CODES = {
    "VALIDATION_ERROR",
    "INVALID_TRANSITION",
    "PRICE_OUTSIDE_LIMIT",
    "ORDER_NOT_FOUND",
    "DUPLICATE_CLIENT_ORDER_ID",
}


class ReplaySpec(Spec):
    action: Literal["replay"]
    show_counts: bool = True
    """False where the counts depend on timing (after a kill -9 stream)."""


@register
class Replay(StepKind):
    names = ("replay",)
    Spec = ReplaySpec
    needs_text = "audit"

    def needs(self, spec: Any) -> set[str]:
        return {"audit", "core", "listing"}

    def describe(self, spec: Any) -> str:
        return "replay the audit log of every order through the lifecycle table"

    def expected(self, spec: Any) -> str:
        return "replay of the accepted events == the orders reported"

    def run(self, case: CaseRun, spec: Any) -> str:
        orders = case.gw.orders()
        logs = gather(case, orders)
        events = [e for log in logs.values() for e in log]
        differ: list[str] = []
        for order in orders:
            problems = replay_problems(order, logs.get(order.order_id, []))
            if problems:
                differ.append(f"#{order.order_id}: {problems[0]}")
        if spec.show_counts:
            case.evidence("replay", ["orders reported", str(len(orders))])
            case.evidence("replay", ["events in their logs", str(len(events))])
            case.evidence("replay", ["accepted events replayed", str(sum(e.accepted for e in events))])
        case.evidence("replay", ["orders that differ from the replay", str(len(differ))])
        if differ:
            raise StepFailed(f"{len(differ)} orders differ from the replay of their log, e.g. {differ[0]}")
        counts = f" ({len(orders)} orders, {sum(e.accepted for e in events)} accepted events)"
        return "replay == orders" + (counts if spec.show_counts else "")


def gather(case: CaseRun, orders: list[Order]) -> dict[int, list[OrderEvent]]:
    """Every listed order's log: through ``GET /events`` when offered, else per order."""
    if case.offers("events_log"):
        logs: dict[int, list[OrderEvent]] = {o.order_id: [] for o in orders}
        for e in case.gw.events():
            if e.order_id in logs:
                logs[e.order_id].append(e)
        return logs
    return {o.order_id: case.gw.events(o.order_id) for o in orders}


def replay_problems(order: Order, log: list[OrderEvent]) -> list[str]:
    """What the order's log says differently from the order (empty when they agree)."""
    problems = order_problems(log, order.order_id)
    status, version = None, 0
    modified: OrderEvent | None = None
    executed: OrderEvent | None = None
    for e in log:
        if not e.accepted:
            if e.reason not in CODES:
                problems.append(f"seq {e.seq}: refused {e.action.value} without a reason code ({text(e.reason)})")
            if e.from_status != status:
                problems.append(f"seq {e.seq}: refused in {text(e.from_status)}, but the order was {text(status)}")
            if e.reason == "INVALID_TRANSITION" and status is not None and (status, e.action) in TRANSITIONS:
                problems.append(f"seq {e.seq}: {e.action.value} of a {status.value} order refused, the table allows it")
            continue
        if status is None:
            want = INITIAL_STATUS if e.action is Action.CREATE else None
        else:
            want = None if e.action is Action.CREATE else TRANSITIONS.get((status, e.action))
        if want is None:
            problems.append(f"seq {e.seq}: accepted {e.action.value} from {text(status)}, which the table refuses")
            break
        if e.from_status != status or e.to_status != want:
            problems.append(
                f"seq {e.seq}: {e.action.value} went {text(e.from_status)} -> {text(e.to_status)}, "
                f"the table gives {text(status)} -> {want.value}"
            )
        version += 1
        if e.version != version:
            problems.append(f"seq {e.seq}: version {text(e.version)}, expected {version}")
        status = want
        modified = e if e.action is Action.MODIFY else modified
        executed = e if e.action is Action.EXECUTE else executed
    if status is None:
        return [*problems, "no accepted create in its log"]
    if status is not order.status or version != order.version:
        problems.append(f"replayed {status.value} v{version}, reported {order.status.value} v{order.version}")
    if modified is not None:
        for key in ("quantity", "price"):
            if not same(modified.changes.get(key), getattr(order, key)):
                problems.append(
                    f"the modify says {key} {text(modified.changes.get(key))}, the order {text(getattr(order, key))}"
                )
    if executed is not None:
        for key in ("executed_quantity", "executed_price"):
            if not same(executed.changes.get(key), getattr(order, key)):
                problems.append(
                    f"the execute says {key} {text(executed.changes.get(key))}, the order {text(getattr(order, key))}"
                )
    return problems
