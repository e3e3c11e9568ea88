"""``race``: commands sent at once from threads behind a barrier (core). DESIGN.md:
concurrent commands on one order have exactly one winner, the rest get 409; concurrent
creates get distinct ids; one client order id makes one order.
"""

from __future__ import annotations

import functools
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any, Literal

from pydantic import Field

from oms.certification.steps._base import ActionName, CaseRun, Code, Spec, StatusName, StepKind, register
from oms.certification.values import StepFailed, summary
from oms.certification.wire import CONNECT_TIMEOUT_S, TIMEOUT_S
from oms.errors import OMSError
from oms.model import Order

RACE_TIMEOUT_S = CONNECT_TIMEOUT_S + TIMEOUT_S
"""The longest one request may take over the wire: a connection whose SYN a full listen
backlog dropped, resent at 31 s, and then its answer."""


class RaceCommand(Spec):
    action: ActionName
    order: str | None = None
    input: dict[str, Any] = Field(default_factory=dict)
    copies: int = 1


class RaceExpect(Spec):
    accepted: int | None = None
    refused: dict[Code, int] | None = None
    status: StatusName | None = None
    version: int | None = None
    status_of_winner: bool = False
    distinct_ids: int | None = None
    new_orders: int | None = None
    serialized: bool = False
    """The winners were applied one after another: their versions follow the order's,
    one each, and the order ends as the last of them left it (no lost update)."""


class RaceSpec(Spec):
    action: Literal["race"]
    commands: list[RaceCommand]
    expect: RaceExpect


def describe_race(spec: Any) -> str:
    parts = [f"{c.copies} x {c.action}" + (f" {c.order}" if c.order else "") for c in spec.commands]
    return " | ".join(parts) + " at once"


@register
class Race(StepKind):
    names = ("race",)
    Spec = RaceSpec

    def needs(self, spec: Any) -> set[str]:
        out = {"core"} | ({"listing"} if spec.expect.new_orders is not None else set())
        return out | ({"execute"} if any(c.action == "execute" for c in spec.commands) else set())

    def uses(self, spec: Any) -> list[tuple[str, str]]:
        return [(c.order, f"race {c.action}") for c in spec.commands if c.order]

    def describe(self, spec: Any) -> str:
        return "race " + describe_race(spec)

    def expected(self, spec: Any) -> str:
        e = spec.expect
        parts = [f"{k}={getattr(e, k)}" for k in type(e).model_fields if k in e.model_fields_set]
        return ", ".join(parts)

    def run(self, case: CaseRun, spec: Any) -> str:
        expect = spec.expect
        calls: list[tuple[str, Callable[[], Order]]] = []
        orders_before = len(case.gw.orders()) if expect.new_orders is not None else 0
        target_alias = None
        for c in spec.commands:
            kwargs = case.template(dict(c.input))
            if c.action == "create":
                fn: Callable[..., Order] = case.gw.create
                args: tuple[Any, ...] = ()
            else:
                target_alias = c.order
                case.cells.append((case.aliases[c.order].status.value, c.action))
                fn, args = getattr(case.gw, c.action), (case.aliases[c.order].order_id,)
            for _ in range(c.copies):
                calls.append((c.action, functools.partial(fn, *args, **kwargs)))
        barrier = threading.Barrier(len(calls))
        outcomes: list[tuple[str, Any] | None] = [None] * len(calls)

        def worker(i: int) -> None:
            try:
                barrier.wait(RACE_TIMEOUT_S)
                outcomes[i] = ("accepted", calls[i][1]())
            except OMSError as e:
                outcomes[i] = (e.code, e)
            except Exception as e:
                outcomes[i] = (f"error {type(e).__name__}", e)

        threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(len(calls))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(RACE_TIMEOUT_S)
        counts = Counter(o[0] if o else "no answer" for o in outcomes)
        winners = [o[1] for o in outcomes if o and o[0] == "accepted"]
        refused = {k: v for k, v in counts.items() if k != "accepted"}
        problems = []
        case.evidence("race", [describe_race(spec), "accepted", str(counts.get("accepted", 0))])
        for code in sorted(refused):
            case.evidence("race", ["", f"refused {code}", str(refused[code])])
        for o in outcomes:
            if o and o[0].startswith("error"):
                problems.append(f"a racing command failed: {o[1]}")
                break
        if expect.accepted is not None and len(winners) != expect.accepted:
            problems.append(f"{len(winners)} accepted, expected {expect.accepted}")
        if expect.refused is not None and refused != expect.refused:
            problems.append(f"refusals {dict(sorted(refused.items()))}, expected {expect.refused}")
        if target_alias is not None:
            before_version = case.aliases[target_alias].version
            final = case.lookup(case.aliases[target_alias].order_id)
            if final is None:
                raise StepFailed(f"order {target_alias} is gone after the race")
            case.aliases[target_alias] = final
            if expect.status is not None and final.status.value != expect.status:
                problems.append(f"final status {final.status.value}, expected {expect.status}")
            if expect.version is not None and final.version != expect.version:
                problems.append(f"final version {final.version}, expected {expect.version}")
            if expect.status_of_winner:
                ok = len(winners) == 1 and winners[0].status == final.status and winners[0].version == final.version
                case.evidence("race", ["", "final order = the winner's acknowledgement", "yes" if ok else "no"])
                if not ok:
                    problems.append(f"final order {summary(final)} is not the single winner's result")
            elif expect.status is not None:
                case.evidence("race", ["", "final status, version", f"{final.status.value}, v{final.version}"])
            if expect.serialized:
                versions = sorted(w.version for w in winners)
                wanted = list(range(before_version + 1, before_version + 1 + len(winners)))
                last = max(winners, key=lambda w: w.version) if winners else None
                ok = versions == wanted and final.version == before_version + len(winners)
                ok = ok and (last is None or (last.status, last.version) == (final.status, final.version))
                case.evidence("race", ["", "winners applied one after another", "yes" if ok else "no"])
                if not ok:
                    problems.append(
                        f"winners' versions {versions} and the final v{final.version} {final.status.value} "
                        f"are not one change after another from v{before_version}"
                    )
        if expect.distinct_ids is not None:
            distinct = len({w.order_id for w in winners})
            case.evidence("race", ["", "distinct order ids", str(distinct)])
            if distinct != expect.distinct_ids:
                problems.append(f"{distinct} distinct ids, expected {expect.distinct_ids}")
        if expect.new_orders is not None:
            new = len(case.gw.orders()) - orders_before
            case.evidence("race", ["", "orders created", str(new)])
            if new != expect.new_orders:
                problems.append(f"{new} orders created, expected {expect.new_orders}")
        for w in winners:
            if w.order_id is not None and any(c.action == "create" for c in spec.commands):
                case.runner.saw_id(w.order_id)
        out = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        if problems:
            raise StepFailed(f"{out}: " + "; ".join(problems))
        return out
