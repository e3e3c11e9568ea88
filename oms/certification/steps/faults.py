"""Real faults: ``restart`` (graceful stop + start on the same database), ``crash`` (the
writes, then kill -9 of the process that acknowledged them, then start again) and
``crash_stream`` (kill -9 while creates are still streaming). Each needs the matching
faculty of the target (``restart`` / ``crash``); a bare URL has neither, so such a case
is NOT RUN there, never passed.
"""

from __future__ import annotations

from typing import Any, Literal

from oms.certification.steps._base import NAMED_IDS, CaseRun, Spec, StepKind, register
from oms.certification.steps.commands import CommandSpec, acknowledgement_problems
from oms.certification.values import StepFailed, diff, summary
from oms.lifecycle import Status
from oms.model import Order


class RestartSpec(Spec):
    action: Literal["restart"]


@register
class Restart(StepKind):
    names = ("restart",)
    Spec = RestartSpec
    needs_text = "restart"

    def needs(self, spec: Any) -> set[str]:
        return {"restart"}

    def describe(self, spec: Any) -> str:
        return "restart (graceful stop, start on the same database)"

    def expected(self, spec: Any) -> str:
        return "system back up on the same database"

    def run(self, case: CaseRun, spec: Any) -> str:
        case.target.restart()
        return "stopped and started again on the same database"


class CrashSpec(Spec):
    action: Literal["crash"]
    writes: list[CommandSpec]


@register
class Crash(StepKind):
    names = ("crash",)
    Spec = CrashSpec
    needs_text = "crash"

    def needs(self, spec: Any) -> set[str]:
        return {"crash"} | ({"core", "execute"} if any(w.action == "execute" for w in spec.writes) else set())

    def uses(self, spec: Any) -> list[tuple[str, str]]:
        made: set[str] = set()
        out = []
        for w in spec.writes:
            if w.order not in (None, *NAMED_IDS) and w.order not in made:
                out.append((w.order, f"crash {w.action}"))
            made.update([w.as_] if w.as_ else [])
        return out

    def makes(self, spec: Any) -> list[str]:
        return [w.as_ for w in spec.writes if w.as_]

    def describe(self, spec: Any) -> str:
        from oms.certification.steps import REGISTRY

        return "crash: " + "; ".join(REGISTRY[w.action].describe(w) for w in spec.writes) + "; then kill -9"

    def expected(self, spec: Any) -> str:
        return "every write answered as written, then the system back up on the same database"

    def run(self, case: CaseRun, spec: Any) -> str:
        from oms.certification.steps import REGISTRY

        if spec.writes and any(w.action not in ("create", "modify", "cancel", "execute") for w in spec.writes):
            raise StepFailed("crash writes are order commands")
        ops, names = [], set()
        for w in spec.writes:
            op: dict[str, Any] = {"action": w.action, "as": w.as_, "kwargs": case.template(dict(w.input))}
            if w.order is not None:
                if w.order in names:
                    op["order_ref"] = w.order
                else:
                    op["order_id"] = case.order_id(w.order, w.order_id)
            names.update([w.as_] if w.as_ else [])
            ops.append(op)
        results = case.target.crash(ops)
        for w, r in zip(spec.writes, results, strict=True):
            desc = case.runner.expand(REGISTRY[w.action].describe(w))
            if w.refuse is not None:  # a refusal is written to the log: it must survive too
                if r["ok"]:
                    raise StepFailed(f"{desc}: accepted; expected a refusal {w.refuse.describe()}")
                if r["code"] not in w.refuse.code:
                    raise StepFailed(f"{desc}: refused {r['code']}; expected {' or '.join(w.refuse.code)}")
                case.evidence("crash", [desc, f"refused {r['code']}, as expected"])
                continue
            if not r["ok"]:
                case.evidence("crash", [desc, f"refused {r['code']}"])
                raise StepFailed(f"{desc}: refused {r['code']}: {r['message']}")
            order = Order.from_dict(r["order"])
            before = case.aliases.get(w.order) if w.order else None
            problems = acknowledgement_problems(case, w.action, case.template(dict(w.input)), before, order)
            if problems:
                raise StepFailed(f"{desc}: {summary(order)}: " + "; ".join(problems))
            case.check_order(order, w.expect)
            if w.action == "create":
                case.runner.saw_id(order.order_id)
            case.evidence("crash", [desc, f"acknowledged: {summary(order)}"])
            if w.as_:
                case.aliases[w.as_] = order
        case.evidence("crash", ["kill -9 (SIGKILL) of the process holding the database", "done; started again"])
        return f"{len(results)} writes acknowledged, then SIGKILL; started again on the same database"


class CrashStreamSpec(Spec):
    action: Literal["crash_stream"]
    acks: int = 20


@register
class CrashStream(StepKind):
    names = ("crash_stream",)
    Spec = CrashStreamSpec
    needs_text = "crash"

    def needs(self, spec: Any) -> set[str]:
        return {"crash", "core", "listing"}

    def describe(self, spec: Any) -> str:
        return f"crash_stream: kill -9 after {spec.acks} acknowledged creates, while still writing"

    def expected(self, spec: Any) -> str:
        return "every acknowledged create is back, complete; at most one unacknowledged one"

    def run(self, case: CaseRun, spec: Any) -> str:
        acks = spec.acks
        token = f"{case.runner.token}-{case.runner.case_id}"
        acked, before_kill = case.target.crash_stream(acks, token)
        for a in acked:
            case.runner.acknowledged.add(int(a["order_id"]))
        stored = [o for o in case.gw.orders(symbol="STREAM") if (o.client_order_id or "").startswith(token + "-S")]
        by_id = {o.order_id: o for o in stored}
        missing, different = [], []
        for a in acked:
            want = Order.from_dict(a)
            got = by_id.get(want.order_id)
            if got is None:
                missing.append(want.order_id)
            elif diff(want, got):
                different.append(want.order_id)
        incomplete = [
            o.order_id
            for o in stored
            if o.status is not Status.NEW or o.version != 1 or o.client_order_id != f"{token}-S{o.quantity - 1}"
        ]
        extra = len(stored) - len(acked)
        for row in (
            ["acknowledged creates before SIGKILL was sent", str(before_kill)],
            ["kill -9 (SIGKILL) while the stream was still writing", "done; started again"],
            ["acknowledged orders missing after the restart", str(len(missing))],
            ["acknowledged orders that read back differently", str(len(different))],
            ["stored stream orders that are incomplete", str(len(incomplete))],
            [
                "stored but unacknowledged (in flight at the kill; 0 or 1 allowed)",
                "0 or 1" if extra in (0, 1) else str(extra),
            ],
        ):
            case.evidence("crash", row)
        problems = []
        if before_kill < acks:
            problems.append(f"only {before_kill} acknowledgements before the kill")
        if missing:
            problems.append(f"{len(missing)} acknowledged orders lost, e.g. #{missing[0]}")
        if different:
            problems.append(f"{len(different)} orders differ from their acknowledgement, e.g. #{different[0]}")
        if incomplete:
            problems.append(f"{len(incomplete)} incomplete orders, e.g. #{incomplete[0]}")
        if extra not in (0, 1):
            problems.append(f"{len(stored)} stored for {len(acked)} acknowledged")
        if problems:
            raise StepFailed("; ".join(problems))
        return f"killed after >= {acks} acknowledgements; every acknowledged order is back, complete"
