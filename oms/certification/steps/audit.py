"""``events``: the audit log -- one order's through ``GET /order/{id}/events`` (audit), or
the whole log through ``GET /events`` (the ``events_log`` extension).

Every answer is held to DESIGN.md: oldest first (seq strictly increasing, ``at`` never
going back), and one order's log holds only that order's events.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any, Literal

from pydantic import Field, model_validator

from oms.certification.steps._base import (
    NAMED_IDS,
    ActionName,
    CaseRun,
    Code,
    Refusal,
    Spec,
    StatusName,
    StepKind,
    register,
)
from oms.certification.values import StepFailed, refusal, same, same_list, text
from oms.errors import OMSError


class EventExpect(Spec):
    """Fields of one event (``last:``)."""

    action: ActionName | None = None
    accepted: bool | None = None
    reason: Code | None = None
    from_status: StatusName | None = None
    to_status: StatusName | None = None
    version: int | None = None
    quantity: int | None = None
    price: str | None = None
    executed_quantity: int | None = None
    executed_price: str | None = None


class EventsExpect(Spec):
    actions: list[ActionName] | None = None
    accepted: list[bool] | None = None
    reasons: list[Code | None] | None = None
    from_status: list[StatusName | None] | None = None
    to_status: list[StatusName | None] | None = None
    versions: list[int | None] | None = None
    last: EventExpect | None = None
    accepted_count: int | None = None
    refused_count: int | None = None
    includes_orders: list[str] = Field(default_factory=list)


class EventsSpec(Spec):
    action: Literal["events"]
    order: str | None = None
    expect: EventsExpect | None = None
    refuse: Refusal | None = None

    @model_validator(mode="after")
    def _one(self) -> EventsSpec:
        if self.expect is not None and self.refuse is not None:
            raise ValueError("a step expects events or a refusal, not both")
        return self


COLUMNS: dict[str, Callable[[Any], Any]] = {
    "actions": lambda e: e.action.value,
    "accepted": lambda e: e.accepted,
    "reasons": lambda e: e.reason,
    "from_status": lambda e: e.from_status.value if e.from_status else None,
    "to_status": lambda e: e.to_status.value if e.to_status else None,
    "versions": lambda e: e.version,
}


@register
class Events(StepKind):
    names = ("events",)
    Spec = EventsSpec
    needs_text = "audit (the whole log: events_log)"

    def needs(self, spec: Any) -> set[str]:
        return {"audit"} if spec.order is not None else {"events_log"}

    def uses(self, spec: Any) -> list[tuple[str, str]]:
        out = [(spec.order, "events")] if spec.order not in (None, *NAMED_IDS) else []
        return out + [(a, "includes_orders") for a in (spec.expect.includes_orders if spec.expect else [])]

    def describe(self, spec: Any) -> str:
        return f"events order={spec.order}" if spec.order else "events (the whole log)"

    def expected(self, spec: Any) -> str:
        if spec.refuse is not None:
            return "refused " + str(spec.refuse.describe())
        parts = ["oldest first"]
        e = spec.expect
        if e is not None:
            for key in COLUMNS:
                if getattr(e, key) is not None:
                    parts.append(f"{key}={text(getattr(e, key))}")
            if e.last is not None:
                fields = [k for k in type(e.last).model_fields if k in e.last.model_fields_set]
                parts.append("last {" + ", ".join(f"{k}: {text(getattr(e.last, k))}" for k in fields) + "}")
            for key in ("accepted_count", "refused_count"):
                if getattr(e, key) is not None:
                    parts.append(f"{key}={getattr(e, key)}")
            if e.includes_orders:
                parts.append(f"includes events of {', '.join(e.includes_orders)}")
        return ", ".join(parts)

    def run(self, case: CaseRun, spec: Any) -> str:
        order_id = case.order_id(spec.order, None) if spec.order is not None else None
        try:
            events = case.gw.events(order_id)
        except OMSError as e:
            if spec.refuse is None:
                raise StepFailed(f"refused {refusal(e)}") from None
            case.check_refusal(e, spec.refuse)
            return f"refused {refusal(e)}"
        if spec.refuse is not None:
            raise StepFailed(f"answered {len(events)} events instead of a refusal {spec.refuse.describe()}")
        problems = order_problems(events, order_id)
        want_: EventsExpect = spec.expect or EventsExpect()
        for key, column in COLUMNS.items():
            want = getattr(want_, key)
            values = [column(ev) for ev in events]
            if want is not None and not same_list(values, want):
                problems.append(f"{key} {text(values)}, expected {text(want)}")
        if want_.last is not None:
            if not events:
                problems.append("no events")
            else:
                last = events[-1].to_dict()
                for k in want_.last.model_fields_set:
                    if not same(last.get(k), getattr(want_.last, k)):
                        problems.append(
                            f"last event {k} is {text(last.get(k))}, expected {text(getattr(want_.last, k))}"
                        )
        accepted = sum(ev.accepted for ev in events)
        if want_.accepted_count is not None and accepted != want_.accepted_count:
            problems.append(f"{accepted} accepted, expected {want_.accepted_count}")
        if want_.refused_count is not None and len(events) - accepted != want_.refused_count:
            problems.append(f"{len(events) - accepted} refused, expected {want_.refused_count}")
        for alias in want_.includes_orders:
            if case.aliases[alias].order_id not in {ev.order_id for ev in events}:
                problems.append(f"no events of {alias}")
        out = f"{len(events)} events" + (f": {' '.join(ev.action.value for ev in events)}" if order_id else "")
        if problems:
            raise StepFailed(f"{out}: " + "; ".join(problems))
        return out


def order_problems(events: list[Any], order_id: int | None) -> list[str]:
    """What a log breaks of 'oldest first' (and, for one order, 'only its events')."""
    problems = []
    if any(b.seq <= a.seq for a, b in itertools.pairwise(events)):
        problems.append("seq does not strictly increase (not oldest first)")
    if any(b.at < a.at for a, b in itertools.pairwise(events)):
        problems.append("timestamps go back")
    if order_id is not None:
        strangers = sorted({ev.order_id for ev in events if ev.order_id != order_id}, key=str)
        if strangers:
            problems.append(f"the log of order {order_id} holds events of {strangers}")
    return problems
