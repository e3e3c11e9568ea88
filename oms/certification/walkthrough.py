"""The certification walk-through for notebooks: the same runner and data, group by
group, as plain deterministic text (``PASS OE-010 ...`` lines and evidence tables).

Adapter layer, no logic of its own: ``Walkthrough.run(group)`` calls ``Runner``; the
text is what nbval compares, so it holds nothing that varies (no durations, no paths).

    wt = Walkthrough()            # a fresh embedded database, simulated clock
    oe = wt.run("OE")
    print(oe)                     # one line per case, then each case's evidence
    assert oe.ok, oe.problems
    print(wt.summary())           # verdict, counts, lifecycle coverage, sign-off fields
"""

from __future__ import annotations

from dataclasses import dataclass

from oms.certification.checklist import Checklist, load
from oms.certification.runner import FAIL, NOT_APPLICABLE, NOT_RUN, PASS, CaseResult, Runner, RunResult
from oms.certification.targets import EmbeddedTarget, Target
from oms.lifecycle import COMMANDS, Status

MAX_ROWS = 8
MAX_CELL = 60


def table(columns: list[str], rows: list[list[str]], *, max_rows: int = MAX_ROWS) -> str:
    """A fixed-width text table (cells cut at MAX_CELL characters, rows at ``max_rows``)."""

    def cut(value: str) -> str:
        return value if len(value) <= MAX_CELL else value[: MAX_CELL - 3] + "..."

    shown = [[cut(str(v)) for v in row] for row in rows[:max_rows]]
    widths = [max([len(c)] + [len(r[i]) for r in shown]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in shown]
    if len(rows) > max_rows:
        lines.append(f"... {len(rows) - max_rows} more rows in the HTML report")
    return "\n".join(lines)


@dataclass
class GroupResult:
    group: str
    results: list[CaseResult]
    evidence: bool = True

    @property
    def ok(self) -> bool:
        """True when no case failed and every mandatory case ran."""
        return not self.problems

    @property
    def problems(self) -> list[str]:
        return [r.line() for r in self.results if r.status == FAIL or (r.status == NOT_RUN and r.case.mandatory)]

    def __str__(self) -> str:
        lines = [r.line() + ("" if r.case.mandatory or r.status == PASS else " (optional)") for r in self.results]
        counts = {s: sum(r.status == s for r in self.results) for s in (PASS, FAIL, NOT_RUN, NOT_APPLICABLE)}
        lines.append(
            f"-- {self.group}: {counts[PASS]} passed, {counts[FAIL]} failed, {counts[NOT_RUN]} not run, "
            f"{counts[NOT_APPLICABLE]} not applicable"
        )
        if self.evidence:
            for r in self.results:
                for ev in r.evidence:
                    lines += ["", f"{r.case.id} evidence: {ev.title}", table(ev.columns, ev.rows)]
        return "\n".join(lines)


class Walkthrough:
    """Runs the checklist group by group on one target, keeping every result."""

    def __init__(self, target: Target | None = None, checklist: Checklist | None = None) -> None:
        self.target = target or EmbeddedTarget()
        self.runner = Runner(self.target, checklist or load())
        self.results: list[CaseResult] = []

    @property
    def checklist(self) -> Checklist:
        return self.runner.checklist

    def run(self, group_id: str, *, evidence: bool = True) -> GroupResult:
        results = [self.runner.run_case(c) for c in self.checklist.group(group_id).cases]
        self.results += results
        return GroupResult(group_id, results, evidence)

    def result(self) -> RunResult:
        r = self.runner
        return RunResult(
            self.checklist, self.target.kind, self.target.description, self.results, offer=r.offer, required=r.required
        )

    def summary(self) -> str:
        """Verdict, counts by group, the lifecycle coverage grid and the sign-off fields."""
        r = self.result()
        lines = [
            f"Target:  {r.target_description}",
            f"Verdict: {r.verdict_line} (exit code {r.exit_code})",
            f"Cases:   {len(r.results)} run of {len(self.checklist.cases)}: {r.count(PASS)} passed, "
            f"{r.count(FAIL)} failed, {r.count(NOT_RUN)} not run ({r.count(NOT_RUN, mandatory=True)} mandatory), "
            f"{r.count(NOT_APPLICABLE)} not applicable",
            "",
        ]
        rows = []
        for g in self.checklist.groups:
            rs = [x for x in r.results if x.case.group == g.id]
            rows.append(
                [g.id, g.name, str(len(rs))]
                + [str(sum(x.status == s for x in rs)) for s in (PASS, FAIL, NOT_RUN, NOT_APPLICABLE)]
            )
        columns = ["group", "name", "cases", "pass", "fail", "not run", "n/a"]
        lines += [table(columns, rows, max_rows=len(rows)), ""]
        cov = r.coverage()
        grid = [
            [s.value]
            + [f"{c['to'] or 'refused'} {c['result']}" for c in cov if c["status"] == s.value and c["action"] in acts]
            for s in Status
            for acts in [[a.value for a in COMMANDS]]
        ]
        lines += ["Lifecycle coverage (generated LC-* cases):",
                  table(["from \\ action", *[a.value for a in COMMANDS]], grid, max_rows=len(grid)), ""]  # fmt: skip
        lines += ["Sign-off", "  Test lead:                 ________________  date: __________",
                  "  Reviewer (venue / broker): ________________  date: __________",
                  "  Decision:                  certified / not certified"]  # fmt: skip
        return "\n".join(lines)

    def close(self) -> None:
        self.target.close()
