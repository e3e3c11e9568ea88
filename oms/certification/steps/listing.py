"""``orders``: the listing ``GET /orders`` (core), with its filters, and the order-book
marks ``mark`` / ``unchanged`` (the listing identical to a marked one).

Every listing is held to DESIGN.md: sorted by order_id, and a filter answers only (and
all) the orders that match it -- checked against the orders the case made.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from oms.certification.steps._base import CaseRun, Refusal, Spec, StatusName, StepKind, alias_field, register
from oms.certification.values import StepFailed, diff, refusal


class ListingExpect(Spec):
    includes: list[str] = Field(default_factory=list)
    excludes: list[str] = Field(default_factory=list)
    all_status: StatusName | None = None
    all_symbol: str | None = None
    all_acknowledged: bool = False
    """Every order this run was acknowledged so far is listed (an unfiltered listing)."""
    same: list[str] = Field(default_factory=list)
    """These orders are listed exactly as last acknowledged (every field)."""


class OrdersSpec(Spec):
    action: Literal["orders"]
    filters: dict[Literal["status", "symbol"], str] = Field(default_factory=dict)
    expect: ListingExpect | None = None
    refuse: Refusal | None = None

    @model_validator(mode="after")
    def _one(self) -> OrdersSpec:
        if self.expect is not None and self.refuse is not None:
            raise ValueError("a step expects a listing or a refusal, not both")
        return self


@register
class Orders(StepKind):
    names = ("orders",)
    Spec = OrdersSpec

    def needs(self, spec: Any) -> set[str]:
        return {"core", "listing"}

    def uses(self, spec: Any) -> list[tuple[str, str]]:
        e = spec.expect
        if not e:
            return []
        return (
            [(a, "includes") for a in e.includes]
            + [(a, "excludes") for a in e.excludes]
            + [(a, "same") for a in e.same]
        )

    def describe(self, spec: Any) -> str:
        return "orders" + ("".join(f" {k}={v!r}" for k, v in spec.filters.items()) if spec.filters else "")

    def expected(self, spec: Any) -> str:
        if spec.refuse is not None:
            return "refused " + str(spec.refuse.describe())
        parts = ["sorted by order_id"]
        e = spec.expect
        if e is not None:
            parts += [f"includes {', '.join(e.includes)}"] if e.includes else []
            parts += [f"excludes {', '.join(e.excludes)}"] if e.excludes else []
            parts += [f"all {e.all_status}"] if e.all_status else []
            parts += [f"all symbol {e.all_symbol}"] if e.all_symbol else []
            parts += [f"{', '.join(e.same)} as acknowledged"] if e.same else []
            parts += ["every acknowledged order listed"] if e.all_acknowledged else []
        return ", ".join(parts)

    def run(self, case: CaseRun, spec: Any) -> str:
        filters = {k: case.template(v) for k, v in spec.filters.items()}
        request = ", ".join(f"{k}={v}" for k, v in filters.items()) or "all"
        try:
            listing = case.gw.orders(**filters)
        except Exception as e:
            from oms.errors import OMSError

            if not isinstance(e, OMSError):
                raise
            if spec.refuse is None:
                raise StepFailed(f"refused {refusal(e)}") from None
            case.check_refusal(e, spec.refuse)
            case.evidence("listing", [f"orders({request})", f"refused {e.code}", ""])
            return f"refused {refusal(e)}"
        if spec.refuse is not None:
            raise StepFailed(f"answered {len(listing)} orders instead of a refusal {spec.refuse.describe()}")
        ids = [o.order_id for o in listing]
        listed = set(ids)
        mine = [f"{a}=#{o.order_id}" for a, o in case.aliases.items() if o.order_id in listed]
        case.evidence("listing", [f"orders({request})", f"{len(listing)} orders", ", ".join(mine)])
        problems = []
        if ids != sorted(ids) or len(listed) != len(ids):
            problems.append("not sorted by order_id (or an order listed twice)")
        want: ListingExpect = spec.expect or ListingExpect()
        problems += [
            f"{a} (#{case.aliases[a].order_id}) missing"
            for a in want.includes
            if case.aliases[a].order_id not in listed
        ]
        problems += [
            f"{a} (#{case.aliases[a].order_id}) listed" for a in want.excludes if case.aliases[a].order_id in listed
        ]
        status, symbol = filters.get("status"), filters.get("symbol")

        def matches(o: Any) -> bool:
            """The filter as DESIGN.md means it: the status, and the symbol as stored (upper-case)."""
            return (not status or o.status.value == status) and (not symbol or o.symbol == symbol.upper())

        if filters:  # every order of the whole book that matches, not only the case's
            everyone = case.gw.orders()
            matching = [o.order_id for o in everyone if matches(o)]
            if matching != ids:
                lost = sorted(set(matching) - listed)
                problems.append(
                    f"the filter {request} answers {len(ids)} orders, the full listing has {len(matching)} that match"
                    + (f", e.g. #{lost[0]} is missing" if lost else "")
                )
        wrong = [o.order_id for o in listing if not matches(o)]
        if wrong:
            problems.append(f"orders {wrong[:5]} do not match the filter {request}")
        for alias, known in case.aliases.items():  # every order of the case that matches must be listed
            if matches(known) and known.order_id not in listed and alias not in want.excludes:
                problems.append(
                    f"{alias} (#{known.order_id}, {known.status.value} {known.symbol}) matches but is not listed"
                )
        if want.all_status:
            bad = [o.order_id for o in listing if o.status.value != want.all_status]
            problems += [f"orders {bad[:5]} are not {want.all_status}"] if bad else []
        if want.all_symbol:
            bad = [o.order_id for o in listing if o.symbol != want.all_symbol]
            problems += [f"orders {bad[:5]} are not {want.all_symbol}"] if bad else []
        by_id = {o.order_id: o for o in listing}
        for alias, known in case.aliases.items():  # a listing shows each order as it is
            got = by_id.get(known.order_id)
            changed = diff(known, got) if got is not None and alias not in want.same else ""
            if changed:
                problems.append(
                    f"{alias} (#{known.order_id}) is listed differently from its acknowledgement: {changed}"
                )
        for alias in want.same:
            known = case.aliases[alias]
            got = by_id.get(known.order_id)
            changed = "not listed" if got is None else diff(known, got)
            if changed:
                problems.append(f"{alias} (#{known.order_id}) differs from its acknowledgement: {changed}")
        if want.all_acknowledged:
            unlisted = sorted(case.runner.acknowledged - listed)
            if unlisted:
                problems.append(f"{len(unlisted)} acknowledged orders are not listed, e.g. #{unlisted[0]}")
        out = f"{len(listing)} orders" + (f", incl. {', '.join(mine)}" if mine else "")
        if problems:
            raise StepFailed(f"{out}: " + "; ".join(problems))
        return out + ", sorted by id"


class MarkSpec(Spec):
    action: Literal["mark"]
    as_: str = alias_field()


@register
class Mark(StepKind):
    names = ("mark",)
    Spec = MarkSpec

    def needs(self, spec: Any) -> set[str]:
        return {"core", "listing"}

    def marks(self, spec: Any) -> tuple[list[str], list[str]]:
        return [spec.as_], []

    def describe(self, spec: Any) -> str:
        return f"mark -> {spec.as_}"

    def expected(self, spec: Any) -> str:
        return "the order book is read"

    def run(self, case: CaseRun, spec: Any) -> str:
        case.marks[spec.as_] = case.book()
        case.evidence("listing", [f"mark {spec.as_}", f"{len(case.marks[spec.as_])} orders", ""])
        return f"{len(case.marks[spec.as_])} orders"


class UnchangedSpec(Spec):
    action: Literal["unchanged"]
    since: str


@register
class Unchanged(StepKind):
    names = ("unchanged",)
    Spec = UnchangedSpec

    def needs(self, spec: Any) -> set[str]:
        return {"core", "listing"}

    def marks(self, spec: Any) -> tuple[list[str], list[str]]:
        return [], [spec.since]

    def describe(self, spec: Any) -> str:
        return f"unchanged since {spec.since}"

    def expected(self, spec: Any) -> str:
        return f"orders identical to mark {spec.since}"

    def run(self, case: CaseRun, spec: Any) -> str:
        before = case.marks[spec.since]
        after = case.book()
        case.evidence("listing", [f"unchanged since {spec.since}", f"{len(after)} orders", ""])
        if after != before:
            new = [d["order_id"] for d in after if d not in before]
            raise StepFailed(f"{len(before)} orders before, {len(after)} after; new or changed: {new[:10]}")
        return f"{len(after)} orders, identical"
