"""The one runner: executes checklist cases against any target, step by step, and keeps
expected vs actual and the evidence of every case.

Adapter layer over the gateway (and the target's faults). What a step does and checks
lives in its kind (``oms.certification.steps``); the runner decides whether a case can
run on this target, runs its steps in order and keeps the record. A case is

- PASS when every step observed what it expected;
- FAIL at the first step that did not (later steps are "not reached");
- NOT APPLICABLE when the system does not offer a tier or extension the case needs
  (say, no ``GET /order/{id}/events``) -- never FAIL, never PASS;
- NOT RUN when the target lacks a faculty the case needs (a restart behind a bare URL).

The verdict: FAILED if a case failed or a tier the operator required (``--require``) is
not offered; INCOMPLETE if a mandatory case was not run; else CERTIFIED -- for the tiers
and extensions the run names (``CERTIFIED (core, read, audit; extensions: none)``).

Determinism: on a fresh embedded database with the simulated clock every id, timestamp,
message and evidence row is the same on every run; only durations differ, and they are
kept apart (``CaseResult.seconds``) for the environment section of the reports.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from oms.certification import needs as needs_
from oms.certification.checklist import PACK_VERSION, Case, Checklist, load
from oms.certification.steps import CaseRun
from oms.certification.targets import Offer, Target
from oms.certification.values import NotOffered, NotSupported, StepFailed, text
from oms.certification.wire import ContractViolation
from oms.errors import OMSError
from oms.lifecycle import COMMANDS, FIX_EXEC_TYPE, FIX_ORD_STATUS, FIX_REFUSAL, Action, Status, grid
from oms.model import format_ts

PASS, FAIL, NOT_RUN, NOT_APPLICABLE = "PASS", "FAIL", "NOT RUN", "NOT APPLICABLE"
STATUSES = (PASS, FAIL, NOT_RUN, NOT_APPLICABLE)
UNKNOWN_ID_OFFSET = 1_000_000


@dataclass
class StepResult:
    index: int
    action: str
    inputs: str
    expected: str
    actual: str
    ok: bool | None
    """True passed, False failed, None not reached / not run / not applicable."""


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
        out = f"{self.status} {self.case.id} {self.case.title}"
        return out + (f" -- {self.reason}" if self.reason else "")


@dataclass
class RunResult:
    checklist: Checklist
    target_kind: str
    target_description: str
    results: list[CaseResult]
    seconds: float = 0.0
    offer: Offer | None = None
    required: frozenset[str] = frozenset()
    pack_version: str = PACK_VERSION
    invocation: dict[str, Any] = field(default_factory=dict)
    """How the target was named (``target`` / ``serve`` / ``token_env``, ``offers``, ``require``):
    what ``--retest`` needs to reach the same target again."""
    retest_of: str | None = None
    started_as: str | None = None
    """The start command of a managed server as run (ports and paths filled in): environment."""
    changes: dict[str, Any] | None = None
    """Against the previous run of the same target (set when the reports are written)."""

    @property
    def offers(self) -> frozenset[str]:
        return self.offer.names if self.offer else frozenset(needs_.OFFERABLE)

    @property
    def lacking(self) -> frozenset[str]:
        """Operations of the core tier the target's face lacks (execute, listing over FIX)."""
        return frozenset(self.offer.lacking) if self.offer else frozenset()

    @property
    def missing_required(self) -> list[str]:
        return [n for n in needs_.OFFERABLE if n in self.required and n not in self.offers]

    def count(self, status: str, *, mandatory: bool | None = None) -> int:
        return sum(
            1 for r in self.results if r.status == status and (mandatory is None or r.case.mandatory == mandatory)
        )

    @property
    def verdict(self) -> str:
        """CERTIFIED (every mandatory case that applies ran and passed), FAILED (a mandatory
        case failed, or a required tier is not offered) or INCOMPLETE. An optional case
        checks what DESIGN.md leaves open: its failure is reported, never the verdict."""
        if self.count(FAIL, mandatory=True) or self.missing_required:
            return "FAILED"
        if self.count(NOT_RUN, mandatory=True):
            return "INCOMPLETE"
        return "CERTIFIED"

    @property
    def verdict_line(self) -> str:
        """``CERTIFIED (core, read, audit; extensions: events_log, sql)``."""
        out = f"{self.verdict} ({needs_.offer_text(self.offers, self.lacking)})"
        optional = [r.case.id for r in self.results if r.status == FAIL and not r.case.mandatory]
        if optional:
            out += f" -- optional cases failed: {', '.join(optional)}"
        if self.missing_required:
            out += f" -- required but not offered: {', '.join(self.missing_required)}"
        return out

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


Progress = Callable[[int, int, CaseResult], None]


class Runner:
    """Runs checklist cases against one target, in checklist order."""

    def __init__(
        self,
        target: Target,
        checklist: Checklist | None = None,
        *,
        token: str | None = None,
        offers: Iterable[str] | None = None,
        require: Iterable[str] = (),
    ) -> None:
        self.target = target
        self.checklist = checklist or load()
        self.token = token or ("Cert" if target.fresh else f"Cert{int(time.time() * 1000):x}")
        """Unique per run against a shared server ({run} in the data), fixed on a fresh database."""
        self.offer = target.offer(None if offers is None else frozenset(offers))
        self.required = frozenset(require) | {"core"}
        self.last_id: int | None = self.offer.probe_id
        self.case_id = ""
        self.acknowledged: set[int] = set() if self.offer.probe_id is None else {self.offer.probe_id}
        """Every order id this run's creates were acknowledged with (all must stay listed)."""
        self._unknown: int | None = None
        self._absent: set[str] = set()
        """Extensions found missing while running (a sql step on a server without a DuckDB file)."""
        self._used: set[str] = set()
        """Extensions a step used successfully (confirms a tentative offer)."""

    @property
    def gw(self) -> Any:
        return self.target.gateway

    def offers_now(self, name: str) -> bool:
        """The system offers this tier or extension, or the target has this faculty."""
        if name in needs_.FACULTIES:
            return name in self.target.capabilities
        if name in needs_.OPERATIONS:
            return self.offers_now("core") and name not in self.offer.lacking
        return name in self.offer.names and name not in self._absent

    def saw_id(self, order_id: int) -> None:
        self.last_id = order_id if self.last_id is None else max(self.last_id, order_id)
        self.acknowledged.add(order_id)

    # ---- running ---------------------------------------------------------------------

    def run(self, cases: Iterable[Case] | None = None, progress: Progress | None = None) -> RunResult:
        selected = list(self.checklist.cases if cases is None else cases)
        started = time.perf_counter()
        results = []
        wanted = [set(c.needs) for c in selected]
        for i, case in enumerate(selected, 1):
            # e.g. an embedded target starts its kill -9 child early, so its start-up overlaps
            self.target.prepare(set().union(*wanted[i - 1 :]))
            result = self.run_case(case)
            results.append(result)
            if progress:
                progress(i, len(selected), result)
        confirmed = self.offer.names - self._absent - (self.offer.tentative - self._used)
        offer = Offer(confirmed, self.offer.how, list(self.offer.probes), self.offer.server, self.offer.probe_id)
        offer.lacking = dict(self.offer.lacking)
        return RunResult(
            self.checklist,
            self.target.kind,
            self.target.description,
            results,
            seconds=time.perf_counter() - started,
            offer=offer,
            required=self.required,
        )

    def run_group(self, group_id: str) -> RunResult:
        return self.run(self.checklist.group(group_id).cases)

    def run_case(self, case: Case) -> CaseResult:
        started = time.perf_counter()
        self.case_id = case.id
        self._unknown = None  # far above the ids of now: ids may grow a lot over a run (block allocators)
        absent = [n for n in case.needs if not self.offers_now(n)]
        if absent:
            offered = [n for n in absent if n not in needs_.FACULTIES]
            status = NOT_APPLICABLE if offered else NOT_RUN
            # an operation the face lacks is said by its reason ("FIX has no message to ...")
            why = [self.offer.lacking[n] for n in absent if n in self.offer.lacking]
            rest = [n for n in (offered or absent) if n not in self.offer.lacking]
            reasons = [_absent_reason(self.target.kind, rest, offered=bool(offered))] if rest else []
            reason = "; ".join(reasons + why)
            steps = [
                StepResult(i, s.action, self.expand(s.describe()), self.expand(s.expected()), status.lower(), None)
                for i, s in enumerate(case.steps, 1)
            ]
            return CaseResult(case, status, reason, steps, seconds=time.perf_counter() - started)
        ctx = CaseRun(runner=self, target=self.target)
        result = CaseResult(case, PASS)
        try:
            for i, step in enumerate(case.steps, 1):
                record = StepResult(
                    i, step.action, self.expand(step.describe(), ctx), self.expand(step.expected(), ctx), "", None
                )
                result.steps.append(record)
                if result.status != PASS:
                    record.actual = "not reached"
                    continue
                missing = [n for n in step.needs if not self.offers_now(n)]
                if step.spec.if_offered and missing:
                    record.actual = f"not applicable: the target does not offer {', '.join(missing)}"
                    continue
                status, reason, record.actual, record.ok = self._step(ctx, step, i)
                if status != PASS:
                    result.status, result.reason = status, reason
        finally:
            try:
                self.target.resume()
            except Exception as e:
                if result.status == PASS:
                    result.status, result.reason = FAIL, f"the target did not come back: {e}"
        if result.status not in (NOT_RUN, NOT_APPLICABLE):
            result.evidence = self._evidence(case, ctx)
        result.cells = ctx.cells
        result.seconds = time.perf_counter() - started
        return result

    def _step(self, ctx: CaseRun, step: Any, i: int) -> tuple[str, str, str, bool | None]:
        """(case status, reason, actual, ok) after one step."""
        where = f"step {i} ({step.action})"
        try:
            if step.action != "sql":
                self.target.resume()
            actual = step.kind.run(ctx, step.spec)
            self._used.update(step.needs)
            return PASS, "", actual, True
        except StepFailed as e:
            self._used.update(step.needs)
            return FAIL, f"{where}: {e}", str(e), False
        except ContractViolation as e:
            broken = f"breaks {getattr(e, 'contract', 'the REST contract')}: {e}"
            return FAIL, f"{where}: {broken}", broken, False
        except NotOffered as e:
            self._absent.add("sql") if step.action == "sql" else None
            return NOT_APPLICABLE, str(e), f"not applicable: {e}", None
        except NotSupported as e:
            return NOT_RUN, str(e), f"not run: {e}", None
        except OMSError as e:  # a read or setup call refused where nothing was expected
            return FAIL, f"{where}: unexpected {e.code}: {e.message}", f"unexpected {e.code}: {e.message}", False
        except Exception as e:
            return FAIL, f"{where}: {type(e).__name__}: {e}", f"error: {type(e).__name__}: {e}", False

    # ---- helpers ---------------------------------------------------------------------

    def unknown_id(self) -> int:
        """An order id that does not exist (far above every id there is)."""
        if self._unknown is None:
            try:
                ids = [o.order_id for o in self.gw.orders()]
            except Exception:  # a listing that breaks the contract: its cases say so
                ids = []
            self._unknown = max([*ids, self.last_id or 0], default=0) + UNKNOWN_ID_OFFSET
        return self._unknown

    def expand(self, value: str, ctx: CaseRun | None = None) -> str:
        """A description with ``{run}`` and ``{unknown}`` filled in (never left unexpanded)."""
        out = value.replace("{run}", self.token)
        if "{unknown}" in out:
            out = out.replace("{unknown}", str(self.unknown_id()))
        return out

    # ---- evidence --------------------------------------------------------------------

    def _evidence(self, case: Case, ctx: CaseRun) -> list[Evidence]:
        out = []
        for kind in case.evidence:
            try:
                out.extend(self._capture(kind, ctx))
            except Exception as e:
                out.append(Evidence(f"{kind} (could not be captured)", ["error"], [[f"{type(e).__name__}: {e}"]]))
        return out

    def _capture(self, kind: str, ctx: CaseRun) -> list[Evidence]:
        if kind == "orders":
            rows = []
            for alias, known in ctx.aliases.items():
                o = ctx.lookup(known.order_id)
                if o is None:
                    rows.append([alias, str(known.order_id), "(not listed)", *[""] * 9])
                    continue
                rows.append(
                    [alias, str(o.order_id), o.symbol, o.side.value, o.order_type.value, str(o.quantity), text(o.price),
                     o.status.value, str(o.version), str(o.executed_quantity), text(o.executed_price),
                     format_ts(o.updated_at)]
                )  # fmt: skip
            columns = ["alias", "id", "symbol", "side", "type", "qty", "price", "status", "v", "exec qty",
                       "exec price", "updated_at"]  # fmt: skip
            return [Evidence("Orders as the target reports them at the end of the case", columns, rows)]
        if kind in ("events", "fix"):
            if not self.offers_now("audit"):
                return [Evidence("Audit log (not offered by the target)", ["note"], [["no GET /order/{id}/events"]])]
            rows, fix = [], []
            for alias, known in ctx.aliases.items():
                for e in self.gw.events(known.order_id):
                    rows.append(
                        [str(e.seq), f"{alias} #{e.order_id}", e.action.value,
                         _status(e.from_status) + " -> " + _status(e.to_status), "yes" if e.accepted else "no",
                         e.reason or "", text(e.version), format_ts(e.at)]
                    )  # fmt: skip
                    act = Action(e.action)
                    if e.accepted and e.to_status is not None:
                        et, os_ = FIX_EXEC_TYPE[act], FIX_ORD_STATUS[Status(e.to_status)]
                        fix.append(
                            [str(e.seq), f"{alias} #{e.order_id}", act.value, f"150={et[0]} ({et[1]})",
                             f"39={os_[0]} ({os_[1]})"]
                        )  # fmt: skip
                    elif not e.accepted:
                        fix.append([str(e.seq), f"{alias} #{e.order_id}", act.value, FIX_REFUSAL[act], e.reason or ""])
            if kind == "events":
                columns = ["seq", "order", "action", "from -> to", "accepted", "reason", "v", "at"]
                return [Evidence("Audit log of the case's orders (oldest first)", columns, rows)]
            columns = ["seq", "order", "action", "FIX message", "FIX status / reason"]
            return [Evidence("FIX equivalents of the events (ExecType 150, OrdStatus 39)", columns, fix)]
        title, columns = _TABLES[kind]
        return [Evidence(title, columns, ctx.tables.get(kind, []))]


_TABLES = {
    "listing": ("Listings and order-book marks", ["request", "answer", "case orders in it"]),
    "race": ("Racing commands and their outcomes", ["commands", "outcome", "count"]),
    "crash": ("Fault injected and what was acknowledged", ["what", "result"]),
    "sql": ("Backend database (DuckDB) queries", ["query", "rows"]),
    "http": ("Raw HTTP requests", ["request", "body", "status", "code"]),
    "replay": ("Replay of the audit log against the order book", ["check", "value"]),
    "fix_session": (
        "FIX messages of the check's session (tag=value, | for SOH)",
        ["direction", "MsgSeqNum, type", "message"],
    ),
}


def _absent_reason(kind: str, names: list[str], *, offered: bool) -> str:
    texts = [f"{needs_.TEXT[n]} ({n})" if offered else needs_.TEXT[n] for n in names]
    if offered:
        return f"the system does not offer {' or '.join(texts)}"
    out = f"the {kind} target cannot {' or '.join(texts)}"
    return out + (" (certify with --serve CMD to run it)" if kind == "url" else "")


def _status(s: Any) -> str:
    return s.value if isinstance(s, Enum) else (s or "-")


__all__ = [
    "COMMANDS",
    "FAIL",
    "NOT_APPLICABLE",
    "NOT_RUN",
    "PASS",
    "CaseResult",
    "Evidence",
    "RunResult",
    "Runner",
    "StepResult",
]
