"""The one runner: executes checklist cases against any target, step by step, and keeps
expected vs actual and the evidence of every case.

Adapter layer over the gateway (and the target's faults). Every expectation of the data
is checked here and nowhere else; the CLI, the notebook walk-through and the tests all
call ``Runner``. A case is PASS when every step observed what it expected, FAIL at the
first step that did not (later steps are "not reached"), NOT RUN when the target cannot
do what a step needs (restart, kill -9, backend reads, raw HTTP).

Determinism: on a fresh embedded database with the simulated clock every id, timestamp,
message and evidence row is the same on every run; only durations differ, and they are
kept apart (``CaseResult.seconds``) for the environment section of the reports.
"""

from __future__ import annotations

import functools
import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any

from oms.certification.checklist import Case, Checklist, Step, load
from oms.certification.targets import NotSupported, Target
from oms.commands import replay
from oms.errors import OMSError
from oms.lifecycle import COMMANDS, FIX_EXEC_TYPE, FIX_ORD_STATUS, FIX_REFUSAL, Action, Status, grid
from oms.model import Order, format_ts

PASS, FAIL, NOT_RUN = "PASS", "FAIL", "NOT RUN"
UNKNOWN_ID_OFFSET = 1_000_000
RACE_TIMEOUT_S = 30.0
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


@dataclass
class StepResult:
    index: int
    action: str
    inputs: str
    expected: str
    actual: str
    ok: bool | None
    """True passed, False failed, None not reached / not run."""


@dataclass
class Evidence:
    title: str
    columns: list[str]
    rows: list[list[str]]


@dataclass
class CaseResult:
    case: Case
    status: str
    reason: str = ""
    steps: list[StepResult] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    cells: list[tuple[str, str]] = field(default_factory=list)
    """Lifecycle grid cells (status, action) the case's commands exercised."""
    seconds: float = 0.0
    """Wall time: environment, never in the deterministic part of a report."""

    def line(self) -> str:
        """``PASS OE-010 Create a LIMIT BUY order`` (with the reason when not passed)."""
        text = f"{self.status} {self.case.id} {self.case.title}"
        return text + (f" -- {self.reason}" if self.reason else "")


@dataclass
class RunResult:
    checklist: Checklist
    target_kind: str
    target_description: str
    results: list[CaseResult]
    seconds: float = 0.0

    def count(self, status: str, *, mandatory: bool | None = None) -> int:
        return sum(
            1 for r in self.results if r.status == status and (mandatory is None or r.case.mandatory == mandatory)
        )

    @property
    def verdict(self) -> str:
        """CERTIFIED (every mandatory case ran and passed), FAILED (a case failed) or INCOMPLETE."""
        if self.count(FAIL):
            return "FAILED"
        if self.count(NOT_RUN, mandatory=True):
            return "INCOMPLETE"
        return "CERTIFIED"

    @property
    def exit_code(self) -> int:
        return {"CERTIFIED": 0, "FAILED": 1, "INCOMPLETE": 2}[self.verdict]

    def coverage(self) -> list[dict[str, Any]]:
        """One entry per lifecycle grid cell: the outcome, its generated case and result,
        and the other cases whose commands exercised it."""
        by_cell = {r.case.cell: r for r in self.results if r.case.cell}
        out = []
        for status, action, to in grid():
            cell = (status.value, action.value)
            generated = by_cell.get(cell)
            others = sorted({r.case.id for r in self.results if cell in r.cells and not r.case.generated})
            out.append(
                {
                    "status": status.value,
                    "action": action.value,
                    "to": to.value if to else None,
                    "case": generated.case.id if generated else None,
                    "result": generated.status if generated else NOT_RUN,
                    "also": others,
                }
            )
        return out


@dataclass
class _Context:
    """What one case remembers while it runs."""

    aliases: dict[str, Order] = field(default_factory=dict)
    marks: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    cells: list[tuple[str, str]] = field(default_factory=list)
    listings: list[list[str]] = field(default_factory=list)
    races: list[list[str]] = field(default_factory=list)
    crash: list[list[str]] = field(default_factory=list)
    sql: list[list[str]] = field(default_factory=list)
    http: list[list[str]] = field(default_factory=list)
    replay: list[list[str]] = field(default_factory=list)


Progress = Callable[[int, int, CaseResult], None]


class Runner:
    """Runs checklist cases against one target, in checklist order."""

    def __init__(self, target: Target, checklist: Checklist | None = None, *, token: str | None = None) -> None:
        self.target = target
        self.checklist = checklist or load()
        self.token = token or ("CERT" if target.fresh else f"CERT{int(time.time() * 1000):x}")
        """Unique per run against a shared server ({run} in the data), fixed on a fresh database."""
        self._unknown: int | None = None

    @property
    def gw(self) -> Any:
        return self.target.gateway

    # ---- running ---------------------------------------------------------------------

    def run(self, cases: Iterable[Case] | None = None, progress: Progress | None = None) -> RunResult:
        selected = list(self.checklist.cases if cases is None else cases)
        started = time.perf_counter()
        results = []
        needs = [set(c.requires) for c in selected]
        for i, case in enumerate(selected, 1):
            # e.g. an embedded target starts its kill -9 child early, so its start-up overlaps
            self.target.prepare(set().union(*needs[i - 1 :]))
            result = self.run_case(case)
            results.append(result)
            if progress:
                progress(i, len(selected), result)
        return RunResult(
            self.checklist, self.target.kind, self.target.description, results, seconds=time.perf_counter() - started
        )

    def run_group(self, group_id: str) -> RunResult:
        return self.run(self.checklist.group(group_id).cases)

    def run_case(self, case: Case) -> CaseResult:
        started = time.perf_counter()
        missing = [c for c in case.requires if c not in self.target.capabilities]
        if missing:
            steps = [
                StepResult(i, s.action, s.describe(), s.expected(), "not run", None)
                for i, s in enumerate(case.steps, 1)
            ]
            reason = f"the {self.target.kind} target cannot {' or '.join(_CAPABILITY_TEXT[c] for c in missing)}"
            if self.target.kind == "url":
                reason += " (certify with --serve CMD to run it)"
            return CaseResult(case, NOT_RUN, reason, steps, seconds=time.perf_counter() - started)
        ctx = _Context()
        result = CaseResult(case, PASS)
        try:
            for i, step in enumerate(case.steps, 1):
                if result.status != PASS:
                    result.steps.append(
                        StepResult(i, step.action, self._describe(step), self._expected(step), "not reached", None)
                    )
                    continue
                try:
                    if step.action != "sql":
                        self.target.resume()
                    actual = self._step(case, ctx, step)
                    ok: bool | None = True
                except StepFailed as e:
                    actual, ok = str(e), False
                    result.status, result.reason = FAIL, f"step {i} ({step.action}): {e}"
                except NotSupported as e:
                    actual, ok = f"not run: {e}", None
                    result.status, result.reason = NOT_RUN, str(e)
                except OMSError as e:  # a read or setup call refused where nothing was expected
                    actual, ok = f"unexpected {e.code}: {e.message}", False
                    result.status, result.reason = FAIL, f"step {i} ({step.action}): unexpected {e.code}: {e.message}"
                except Exception as e:
                    actual, ok = f"error: {type(e).__name__}: {e}", False
                    result.status, result.reason = FAIL, f"step {i} ({step.action}): {type(e).__name__}: {e}"
                result.steps.append(StepResult(i, step.action, self._describe(step), self._expected(step), actual, ok))
        finally:
            try:
                self.target.resume()
            except Exception as e:
                if result.status == PASS:
                    result.status, result.reason = FAIL, f"the target did not come back: {e}"
        if result.status != NOT_RUN:
            result.evidence = self._evidence(case, ctx)
        result.cells = ctx.cells
        result.seconds = time.perf_counter() - started
        return result

    # ---- steps -----------------------------------------------------------------------

    def _step(self, case: Case, ctx: _Context, step: Step) -> str:
        action = step.action
        if action in ("create", "modify", "cancel", "execute", "get"):
            return self._command(ctx, step.spec)
        return getattr(self, f"_do_{action}")(case, ctx, step.spec)  # type: ignore[no-any-return]

    def _command(self, ctx: _Context, spec: dict[str, Any]) -> str:
        action = spec["action"]
        kwargs = {k: self._template(v) for k, v in (spec.get("input") or {}).items()}
        alias = spec.get("order")
        before = ctx.aliases.get(alias) if alias else None
        if action == "create":
            call: Callable[[], Order] = lambda: self.gw.create(**kwargs)  # noqa: E731
        else:
            order_id = self._order_id(ctx, spec)
            method = getattr(self.gw, action)
            call = (lambda: method(order_id)) if action in ("get", "cancel") else (lambda: method(order_id, **kwargs))
            if before is not None and action != "get":
                ctx.cells.append((before.status.value, action))
        try:
            order = call()
        except OMSError as e:
            if "refuse" not in spec:
                raise StepFailed(f"refused {_refusal(e)}") from None
            self._check_refusal(e, spec["refuse"])
            if before is not None:
                self._check_unchanged(before)
            return f"refused {_refusal(e)}" + ("; order unchanged" if before is not None and action != "get" else "")
        if "refuse" in spec:
            raise StepFailed(f"accepted: {_summary(order)}")
        self._check_order(ctx, order, spec.get("expect") or {})
        if spec.get("as"):
            ctx.aliases[spec["as"]] = order
        elif alias in ctx.aliases:
            ctx.aliases[alias] = order
        return _summary(order)

    def _check_refusal(self, e: OMSError, refuse: Any) -> None:
        want = refuse if isinstance(refuse, dict) else {"code": refuse}
        codes = want["code"] if isinstance(want["code"], list) else [want["code"]]
        if e.code not in codes:
            raise StepFailed(f"refused {_refusal(e)}; expected {' or '.join(codes)}")
        fields = getattr(e, "fields", None) or []
        missing = [f for f in want.get("fields", []) if f not in fields]
        if missing:
            raise StepFailed(f"refused {_refusal(e)}; the refusal does not name {', '.join(missing)}")
        text = e.message.lower()
        absent = [w for w in want.get("message_contains", []) if str(self._template(w)).lower() not in text]
        if absent:
            raise StepFailed(f"refused {_refusal(e)}; the message does not mention {', '.join(map(str, absent))}")

    def _check_unchanged(self, before: Order) -> None:
        after = self.gw.get(before.order_id)
        diff = _diff(before, after)
        if diff:
            raise StepFailed(f"refused, but the order changed: {diff}")

    def _check_order(self, ctx: _Context, order: Order, expect: dict[str, Any]) -> None:
        problems = []
        for key, want in expect.items():
            if key == "same_as":
                diff = _diff(ctx.aliases[want], order)
                if diff:
                    problems.append(f"differs from {want} as acknowledged: {diff}")
            elif key == "id_after":
                if not order.order_id > ctx.aliases[want].order_id:
                    problems.append(f"order_id {order.order_id} is not after {ctx.aliases[want].order_id}")
            elif key == "id_below_unknown":
                if not order.order_id < self.unknown_id():
                    problems.append(
                        f"order_id {order.order_id} jumped past the unknown id {self.unknown_id()} refused earlier"
                    )
            elif key == "timestamps":
                for name in ("created_at", "updated_at"):
                    at = getattr(order, name)
                    if at.utcoffset() is None or at.utcoffset().total_seconds() != 0 or at.microsecond % 1000:
                        problems.append(f"{name} {at.isoformat()} is not UTC with milliseconds")
            elif key == "updated_equals_created":
                if order.updated_at != order.created_at:
                    problems.append(
                        f"updated_at {format_ts(order.updated_at)} != created_at {format_ts(order.created_at)}"
                    )
            else:
                got = getattr(order, key)
                if not _same(got, self._template(want)):
                    problems.append(f"{key} is {_text(got)}, expected {_text(self._template(want))}")
        if problems:
            raise StepFailed(f"{_summary(order)}: " + "; ".join(problems))

    def _do_orders(self, case: Case, ctx: _Context, spec: dict[str, Any]) -> str:
        filters = {k: self._template(v) for k, v in (spec.get("filters") or {}).items()}
        request = ", ".join(f"{k}={v}" for k, v in filters.items()) or "all"
        try:
            listing = self.gw.orders(**filters)
        except OMSError as e:
            if "refuse" not in spec:
                raise StepFailed(f"refused {_refusal(e)}") from None
            self._check_refusal(e, spec["refuse"])
            ctx.listings.append([f"orders({request})", f"refused {e.code}", ""])
            return f"refused {_refusal(e)}"
        if "refuse" in spec:
            raise StepFailed(f"answered {len(listing)} orders instead of a refusal")
        ids = [o.order_id for o in listing]
        mine = [f"{a}=#{o.order_id}" for a, o in ctx.aliases.items() if o.order_id in set(ids)]
        ctx.listings.append([f"orders({request})", f"{len(listing)} orders", ", ".join(mine)])
        problems = []
        expect = spec.get("expect") or {}
        for alias in expect.get("includes", []):
            if ctx.aliases[alias].order_id not in ids:
                problems.append(f"{alias} (#{ctx.aliases[alias].order_id}) missing")
        for alias in expect.get("excludes", []):
            if ctx.aliases[alias].order_id in ids:
                problems.append(f"{alias} (#{ctx.aliases[alias].order_id}) listed")
        if "all_status" in expect:
            wrong = [o.order_id for o in listing if o.status.value != expect["all_status"]]
            if wrong:
                problems.append(f"orders {wrong[:5]} are not {expect['all_status']}")
        if "all_symbol" in expect:
            wrong = [o.order_id for o in listing if o.symbol != expect["all_symbol"]]
            if wrong:
                problems.append(f"orders {wrong[:5]} are not {expect['all_symbol']}")
        if expect.get("sorted") and ids != sorted(ids):
            problems.append("not sorted by order_id")
        summary = f"{len(listing)} orders" + (f", incl. {', '.join(mine)}" if mine else "")
        if problems:
            raise StepFailed(f"{summary}: " + "; ".join(problems))
        return summary + (", sorted by id" if expect.get("sorted") else "")

    def _do_events(self, case: Case, ctx: _Context, spec: dict[str, Any]) -> str:
        order_id = self._order_id(ctx, spec) if ("order" in spec or "order_id" in spec) else None
        try:
            events = self.gw.events(order_id)
        except OMSError as e:
            if "refuse" not in spec:
                raise StepFailed(f"refused {_refusal(e)}") from None
            self._check_refusal(e, spec["refuse"])
            return f"refused {_refusal(e)}"
        if "refuse" in spec:
            raise StepFailed(f"answered {len(events)} events instead of a refusal")
        expect = spec.get("expect") or {}
        columns = {
            "actions": [e.action.value for e in events],
            "accepted": [e.accepted for e in events],
            "reasons": [e.reason for e in events],
            "from_status": [e.from_status.value if e.from_status else None for e in events],
            "to_status": [e.to_status.value if e.to_status else None for e in events],
            "versions": [e.version for e in events],
        }
        problems = []
        for key, values in columns.items():
            if key in expect and not _same_list(values, expect[key]):
                problems.append(f"{key} {_text(values)}, expected {_text(expect[key])}")
        if "last" in expect:
            if not events:
                problems.append("no events")
            else:
                last = events[-1].to_dict()
                for k, want in expect["last"].items():
                    if not _same(last.get(k), want):
                        problems.append(f"last event {k} is {_text(last.get(k))}, expected {_text(want)}")
        if expect.get("sorted"):
            seqs = [e.seq for e in events]
            if any(b <= a for a, b in itertools.pairwise(seqs)):
                problems.append("seq does not strictly increase")
            if any(b.at < a.at for a, b in itertools.pairwise(events)):
                problems.append("timestamps go back")
        if "accepted_count" in expect and sum(e.accepted for e in events) != expect["accepted_count"]:
            problems.append(f"{sum(e.accepted for e in events)} accepted, expected {expect['accepted_count']}")
        if "refused_count" in expect and sum(not e.accepted for e in events) != expect["refused_count"]:
            problems.append(f"{sum(not e.accepted for e in events)} refused, expected {expect['refused_count']}")
        for alias in expect.get("includes_orders", []):
            if ctx.aliases[alias].order_id not in {e.order_id for e in events}:
                problems.append(f"no events of {alias}")
        summary = f"{len(events)} events" + (f": {' '.join(columns['actions'])}" if order_id is not None else "")
        if problems:
            raise StepFailed(f"{summary}: " + "; ".join(problems))
        return summary

    def _do_mark(self, case: Case, ctx: _Context, spec: dict[str, Any]) -> str:
        ctx.marks[spec["as"]] = [o.to_dict() for o in self.gw.orders()]
        ctx.listings.append([f"mark {spec['as']}", f"{len(ctx.marks[spec['as']])} orders", ""])
        return f"{len(ctx.marks[spec['as']])} orders"

    def _do_unchanged(self, case: Case, ctx: _Context, spec: dict[str, Any]) -> str:
        before = ctx.marks[spec["since"]]
        after = [o.to_dict() for o in self.gw.orders()]
        ctx.listings.append([f"unchanged since {spec['since']}", f"{len(after)} orders", ""])
        if after != before:
            new = [d["order_id"] for d in after if d not in before]
            raise StepFailed(f"{len(before)} orders before, {len(after)} after; new or changed: {new[:10]}")
        return f"{len(after)} orders, identical"

    def _do_replay(self, case: Case, ctx: _Context, spec: dict[str, Any]) -> str:
        events = self.gw.events()
        try:
            rebuilt = replay(events)
        except OMSError as e:
            raise StepFailed(f"the log cannot be replayed through the lifecycle table: {e.code}: {e.message}") from None
        except (KeyError, TypeError) as e:
            raise StepFailed(f"the log cannot be replayed: an accepted event lacks {e}") from None
        reported = {o.order_id: o.to_dict() for o in self.gw.orders()}
        replayed = {k: v.to_dict() for k, v in rebuilt.items()}
        differ = sorted(k for k in set(reported) | set(replayed) if reported.get(k) != replayed.get(k))
        accepted = sum(e.accepted for e in events)
        if spec.get("show_counts", True):
            ctx.replay += [
                ["events in the log", str(len(events))],
                ["accepted events replayed", str(accepted)],
                ["orders rebuilt", str(len(replayed))],
                ["orders reported", str(len(reported))],
            ]
        ctx.replay.append(["orders that differ", str(len(differ))])
        if differ:
            k = differ[0]
            raise StepFailed(
                f"{len(differ)} orders differ from the replay, e.g. #{k}: reported "
                f"{_brief(reported.get(k))} vs replayed {_brief(replayed.get(k))}"
            )
        return "replay == orders" + (
            f" ({len(reported)} orders, {accepted} accepted events)" if spec.get("show_counts", True) else ""
        )

    def _do_restart(self, case: Case, ctx: _Context, spec: dict[str, Any]) -> str:
        self.target.restart()
        return "stopped and started again on the same database"

    def _do_crash(self, case: Case, ctx: _Context, spec: dict[str, Any]) -> str:
        self.target.require("crash")
        ops, names = [], set()
        for w in spec["writes"]:
            op: dict[str, Any] = {
                "action": w["action"],
                "as": w.get("as"),
                "kwargs": {k: self._template(v) for k, v in (w.get("input") or {}).items()},
            }
            if "order" in w:
                if w["order"] in names:
                    op["order_ref"] = w["order"]
                else:
                    op["order_id"] = self._order_id(ctx, w)
            if w.get("as"):
                names.add(w["as"])
            ops.append(op)
        results = self.target.crash(ops)
        for w, r in zip(spec["writes"], results, strict=True):
            desc = Step(w["action"], w).describe()
            if not r["ok"]:
                ctx.crash.append([desc, f"refused {r['code']}"])
                raise StepFailed(f"{desc}: refused {r['code']}: {r['message']}")
            order = Order.from_dict(r["order"])
            self._check_order(ctx, order, w.get("expect") or {})
            ctx.crash.append([desc, f"acknowledged: {_summary(order)}"])
            if w.get("as"):
                ctx.aliases[w["as"]] = order
        ctx.crash.append(["kill -9 (SIGKILL) of the process holding the database", "done; started again"])
        return f"{len(results)} writes acknowledged, then SIGKILL; started again on the same database"

    def _do_crash_stream(self, case: Case, ctx: _Context, spec: dict[str, Any]) -> str:
        acks = int(spec.get("acks", 20))
        token = f"{self.token}-{case.id}"
        acked, before_kill = self.target.crash_stream(acks, token)
        stored = [o for o in self.gw.orders(symbol="STREAM") if (o.client_order_id or "").startswith(token + "-S")]
        by_id = {o.order_id: o for o in stored}
        missing, different = [], []
        for a in acked:
            want = Order.from_dict(a)
            got = by_id.get(want.order_id)
            if got is None:
                missing.append(want.order_id)
            elif _diff(want, got):
                different.append(want.order_id)
        incomplete = [
            o.order_id
            for o in stored
            if o.status is not Status.NEW or o.version != 1 or o.client_order_id != f"{token}-S{o.quantity - 1}"
        ]
        extra = len(stored) - len(acked)
        ctx.crash += [
            ["acknowledged creates before SIGKILL was sent", str(before_kill)],
            ["kill -9 (SIGKILL) while the stream was still writing", "done; started again"],
            ["acknowledged orders missing after the restart", str(len(missing))],
            ["acknowledged orders that read back differently", str(len(different))],
            ["stored stream orders that are incomplete", str(len(incomplete))],
            [
                "stored but unacknowledged (in flight at the kill; 0 or 1 allowed)",
                "0 or 1" if extra in (0, 1) else str(extra),
            ],
        ]
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

    def _do_race(self, case: Case, ctx: _Context, spec: dict[str, Any]) -> str:
        calls: list[tuple[str, Callable[[], Order]]] = []
        orders_before = len(self.gw.orders()) if "new_orders" in spec.get("expect", {}) else 0
        target_alias = None
        for c in spec["commands"]:
            kwargs = {k: self._template(v) for k, v in (c.get("input") or {}).items()}
            action = c["action"]
            if action == "create":
                fn: Callable[..., Order] = self.gw.create
                args: tuple[Any, ...] = ()
            else:
                target_alias = c["order"]
                ctx.cells.append((ctx.aliases[target_alias].status.value, action))
                fn, args = getattr(self.gw, action), (ctx.aliases[target_alias].order_id,)
            for _ in range(int(c.get("copies", 1))):
                calls.append((action, functools.partial(fn, *args, **kwargs)))
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
        expect = spec.get("expect") or {}
        problems = []
        ctx.races.append([describe_calls(spec), "accepted", str(counts.get("accepted", 0))])
        for code in sorted(refused):
            ctx.races.append(["", f"refused {code}", str(refused[code])])
        if "accepted" in expect and len(winners) != expect["accepted"]:
            problems.append(f"{len(winners)} accepted, expected {expect['accepted']}")
        if "refused" in expect and refused != (expect["refused"] or {}):
            problems.append(f"refusals {dict(sorted(refused.items()))}, expected {expect['refused']}")
        if target_alias is not None:
            final = self.gw.get(ctx.aliases[target_alias].order_id)
            ctx.aliases[target_alias] = final
            if "status" in expect and final.status.value != expect["status"]:
                problems.append(f"final status {final.status.value}, expected {expect['status']}")
            if "version" in expect and final.version != expect["version"]:
                problems.append(f"final version {final.version}, expected {expect['version']}")
            if expect.get("status_of_winner"):
                ok = len(winners) == 1 and winners[0].status == final.status and winners[0].version == final.version
                ctx.races.append(["", "final order = the winner's acknowledgement", "yes" if ok else "no"])
                if not ok:
                    problems.append(f"final order {_summary(final)} is not the single winner's result")
            elif "status" in expect:
                ctx.races.append(["", "final status, version", f"{final.status.value}, v{final.version}"])
        if "distinct_ids" in expect:
            distinct = len({w.order_id for w in winners})
            ctx.races.append(["", "distinct order ids", str(distinct)])
            if distinct != expect["distinct_ids"]:
                problems.append(f"{distinct} distinct ids, expected {expect['distinct_ids']}")
        if "new_orders" in expect:
            new = len(self.gw.orders()) - orders_before
            ctx.races.append(["", "orders created", str(new)])
            if new != expect["new_orders"]:
                problems.append(f"{new} orders created, expected {expect['new_orders']}")
        summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        if problems:
            raise StepFailed(f"{summary}: " + "; ".join(problems))
        return summary

    def _do_sql(self, case: Case, ctx: _Context, spec: dict[str, Any]) -> str:
        expect = spec.get("expect") or {}
        gateway_count = None
        if expect.get("equals_gateway_count"):
            self.target.resume()
            gateway_count = len(self.gw.orders())
        params = [self._param(ctx, p) for p in spec.get("params", [])]
        rows = self.target.sql(spec["query"], params)
        shown = [[_text(v) for v in row] for row in rows]
        query = " ".join(spec["query"].split())
        ctx.sql.append([query, "; ".join(", ".join(r) for r in shown)])
        if "rows" in expect and not _same_rows(rows, expect["rows"]):
            raise StepFailed(f"rows {shown}, expected {_text(expect['rows'])}")
        if gateway_count is not None:
            (count,) = rows[0]
            ctx.sql.append(["orders the gateway reports", str(gateway_count)])
            if count != gateway_count:
                raise StepFailed(f"the database has {count} orders, the gateway reports {gateway_count}")
            return f"{count} rows == {gateway_count} orders from the gateway"
        return "; ".join(", ".join(r) for r in shown)

    def _do_http(self, case: Case, ctx: _Context, spec: dict[str, Any]) -> str:
        path = self._template(spec["path"], ctx)
        status, payload = self.target.http(spec["method"], path, body=spec.get("body"), json_body=spec.get("json"))
        detail = payload.get("detail") if isinstance(payload, dict) else None
        code = detail.get("code") if isinstance(detail, dict) else None
        fields = [e.get("field") for e in detail.get("errors", [])] if isinstance(detail, dict) else []
        body = spec.get("body") if "body" in spec else (_text(spec["json"]) if "json" in spec else "")
        ctx.http.append([f"{spec['method']} {path}", str(body), str(status), str(code)])
        actual = f"{status} {code or ''}".strip() + (f" naming {', '.join(map(str, fields))}" if fields else "")
        expect = spec.get("expect") or {}
        problems = []
        if status >= 500:
            problems.append("a server error for a client's mistake")
        wanted = expect.get("status")
        if wanted is not None and status not in (wanted if isinstance(wanted, list) else [wanted]):
            problems.append(f"status {status}, expected {wanted}")
        if status >= 400 and not (isinstance(detail, dict) and isinstance(detail.get("message"), str) and code):
            problems.append('the body is not {"detail": {"code", "message"}}')
        if "code" in expect and code != expect["code"]:
            problems.append(f"code {code}, expected {expect['code']}")
        missing = [f for f in expect.get("fields", []) if f not in fields]
        if missing:
            problems.append(f"errors do not name {', '.join(missing)}")
        if problems:
            raise StepFailed(f"{actual}: " + "; ".join(problems))
        return actual

    # ---- helpers ---------------------------------------------------------------------

    def unknown_id(self) -> int:
        """An order id that does not exist (far above every id there is)."""
        if self._unknown is None:
            ids = [o.order_id for o in self.gw.orders()]
            self._unknown = max(ids, default=0) + UNKNOWN_ID_OFFSET
        return self._unknown

    def _order_id(self, ctx: _Context, spec: dict[str, Any]) -> Any:
        if "order_id" in spec:
            return spec["order_id"]
        alias = spec["order"]
        if alias == "unknown":
            return self.unknown_id()
        return ctx.aliases[alias].order_id

    def _param(self, ctx: _Context, value: Any) -> Any:
        if isinstance(value, str) and value.startswith("@"):
            return ctx.aliases[value[1:]].order_id
        return self._template(value)

    def _template(self, value: Any, ctx: _Context | None = None) -> Any:
        if not isinstance(value, str) or "{" not in value:
            return value
        value = value.replace("{run}", self.token)
        if "{unknown}" in value:
            value = value.replace("{unknown}", str(self.unknown_id()))
        if ctx is not None:
            for alias, order in ctx.aliases.items():
                value = value.replace("{" + alias + "}", str(order.order_id))
        return value

    def _describe(self, step: Step) -> str:
        return str(self._template(step.describe()))

    def _expected(self, step: Step) -> str:
        return str(self._template(step.expected()))

    # ---- evidence --------------------------------------------------------------------

    def _evidence(self, case: Case, ctx: _Context) -> list[Evidence]:
        out = []
        for kind in case.evidence:
            try:
                out.extend(self._capture(kind, ctx))
            except Exception as e:
                out.append(Evidence(f"{kind} (could not be captured)", ["error"], [[f"{type(e).__name__}: {e}"]]))
        return out

    def _capture(self, kind: str, ctx: _Context) -> list[Evidence]:
        if kind == "orders":
            rows = []
            for alias, known in ctx.aliases.items():
                o = self.gw.get(known.order_id)
                rows.append(
                    [
                        alias,
                        str(o.order_id),
                        o.symbol,
                        o.side.value,
                        o.order_type.value,
                        str(o.quantity),
                        _text(o.price),
                        o.status.value,
                        str(o.version),
                        str(o.executed_quantity),
                        _text(o.executed_price),
                        format_ts(o.updated_at),
                    ]
                )
            return [
                Evidence(
                    "Orders as the target reports them at the end of the case",
                    [
                        "alias",
                        "id",
                        "symbol",
                        "side",
                        "type",
                        "qty",
                        "price",
                        "status",
                        "v",
                        "exec qty",
                        "exec price",
                        "updated_at",
                    ],
                    rows,
                )
            ]
        if kind in ("events", "fix"):
            rows, fix = [], []
            for alias, known in ctx.aliases.items():
                for e in self.gw.events(known.order_id):
                    rows.append(
                        [
                            str(e.seq),
                            f"{alias} #{e.order_id}",
                            e.action.value,
                            _status(e.from_status) + " -> " + _status(e.to_status),
                            "yes" if e.accepted else "no",
                            e.reason or "",
                            _text(e.version),
                            format_ts(e.at),
                        ]
                    )
                    act = Action(e.action)
                    if e.accepted and e.to_status is not None:
                        et, os_ = FIX_EXEC_TYPE[act], FIX_ORD_STATUS[Status(e.to_status)]
                        fix.append(
                            [
                                str(e.seq),
                                f"{alias} #{e.order_id}",
                                act.value,
                                f"150={et[0]} ({et[1]})",
                                f"39={os_[0]} ({os_[1]})",
                            ]
                        )
                    elif not e.accepted:
                        fix.append([str(e.seq), f"{alias} #{e.order_id}", act.value, FIX_REFUSAL[act], e.reason or ""])
            if kind == "events":
                return [
                    Evidence(
                        "Audit log of the case's orders (oldest first)",
                        ["seq", "order", "action", "from -> to", "accepted", "reason", "v", "at"],
                        rows,
                    )
                ]
            return [
                Evidence(
                    "FIX equivalents of the events (ExecType 150, OrdStatus 39)",
                    ["seq", "order", "action", "FIX message", "FIX status / reason"],
                    fix,
                )
            ]
        table = {
            "listing": ("Listings and order-book marks", ["request", "answer", "case orders in it"], ctx.listings),
            "race": ("Racing commands and their outcomes", ["commands", "outcome", "count"], ctx.races),
            "crash": ("Fault injected and what was acknowledged", ["what", "result"], ctx.crash),
            "sql": ("Backend database (DuckDB) queries", ["query", "rows"], ctx.sql),
            "http": ("Raw HTTP requests", ["request", "body", "status", "code"], ctx.http),
            "replay": ("Replay of the audit log against the order book", ["check", "value"], ctx.replay),
        }
        title, columns, rows = table[kind]
        return [Evidence(title, columns, rows)]


_CAPABILITY_TEXT = {
    "restart": "be restarted",
    "crash": "be killed (kill -9)",
    "sql": "show its backend database",
    "http": "take raw HTTP requests",
}


def describe_calls(spec: dict[str, Any]) -> str:
    from oms.certification.checklist import describe_race

    return describe_race(spec)


def _status(s: Any) -> str:
    return s.value if isinstance(s, Enum) else (s or "-")


def _summary(order: Order) -> str:
    price = f" @ {_text(order.price)}" if order.price is not None else " MARKET"
    text = f"#{order.order_id} {order.status.value} v{order.version} {order.side.value} {order.quantity} "
    text += f"{order.symbol}{price}"
    if order.executed_quantity:
        text += f", filled {order.executed_quantity} @ {_text(order.executed_price)}"
    return text


def _refusal(e: OMSError) -> str:
    fields = getattr(e, "fields", None)
    return f"{e.code}" + (f" [{', '.join(fields)}]" if fields else "") + f": {e.message}"


def _diff(a: Order, b: Order) -> str:
    da, db = a.to_dict(), b.to_dict()
    return ", ".join(f"{k} {_text(da[k])} -> {_text(db[k])}" for k in ORDER_FIELDS if da[k] != db[k])


def _brief(d: dict[str, Any] | None) -> str:
    if d is None:
        return "absent"
    return f"{d['status']} v{d['version']} qty {d['quantity']} price {_text(d['price'])}"


def _text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_text(v)}" for k, v in value.items()) + "}"
    if hasattr(value, "tzinfo") and hasattr(value, "isoformat"):
        return format_ts(value.replace(tzinfo=value.tzinfo or UTC))
    return str(value)


def _same(got: Any, want: Any) -> bool:
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


def _same_list(got: list[Any], want: list[Any]) -> bool:
    return len(got) == len(want) and all(_same(g, w) for g, w in zip(got, want, strict=True))


def _same_rows(got: list[tuple[Any, ...]], want: list[list[Any]]) -> bool:
    return len(got) == len(want) and all(_same_list(list(g), list(w)) for g, w in zip(got, want, strict=True))


__all__ = [
    "COMMANDS",
    "FAIL",
    "NOT_RUN",
    "PASS",
    "CaseResult",
    "Evidence",
    "RunResult",
    "Runner",
    "StepResult",
]
