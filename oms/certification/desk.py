"""The certification desk for notebooks: pick a system, run the pack with a live progress
bar, read the results as a sortable and filterable table, open one case, sign off.

Adapter layer (ipywidgets) over the one run path of ``oms certify``
(``oms.certification.cli.certify``): the same runner, the same reports in
``certification/runs/run-NNN/``. No logic of its own beyond presenting: every button
calls a public method (``run``, ``table``, ``case_text``, ``sign``) that tests call too.

    desk = CertifyDesk()          # the widget; desk.run() / desk.sign(...) by code alike
    desk

Targets: ``scratch`` (a fresh embedded database on the simulated clock: deterministic),
``shared`` (the workbench's book, ``OMS_URL``: the pack writes orders into it), ``url``
(a server someone else runs) and ``serve`` (a start command with ``{port}`` and ``{db}``:
the pack starts, restarts and kills it).
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

import ipywidgets as w
import pandas as pd

from oms.certification.checklist import Checklist, load
from oms.certification.cli import DEFAULT_OUT, Refused, certify, invocation_for
from oms.certification.report import DECISIONS, SIGNOFF_ROLES, sign
from oms.certification.runner import FAIL, NOT_APPLICABLE, NOT_RUN, PASS, CaseResult, RunResult
from oms.certification.walkthrough import table

WHERE = (("scratch book", "scratch"), ("shared book", "shared"), ("a URL", "url"), ("a start command", "serve"))
SORTS = ("checklist order", "status", "id", "group")
COLUMNS = ["id", "group", "status", "mandatory", "needs", "title", "reason"]
_COLOUR = {PASS: "#1e7d32", FAIL: "#c62828", NOT_RUN: "#8a6d00", NOT_APPLICABLE: "#607d8b"}


def default_out() -> Path:
    """Where the desk's runs go: ``OMS_CERTIFY_OUT``, else ``certification/runs`` beside the
    notebooks folder the kernel runs in (the repository's, inside the workbench)."""
    configured = os.environ.get("OMS_CERTIFY_OUT")
    return Path(configured) if configured else Path.cwd().parent / DEFAULT_OUT


class CertifyDesk:
    """The desk's widgets and the run they show."""

    def __init__(
        self, *, where: str = "scratch", out: str | os.PathLike[str] | None = None, checklist: Checklist | None = None
    ) -> None:
        self.checklist = checklist or load()
        self.out = Path(out) if out is not None else default_out()
        self.result: RunResult | None = None
        self.run_dir: Path | None = None
        self.where = w.ToggleButtons(options=WHERE, value=where, description="system")
        self.url = w.Text(value=os.environ.get("OMS_URL", ""), placeholder="http://127.0.0.1:8000", description="URL")
        self.command = w.Text(value="oms serve --db {db} --port {port}", description="start with")
        self.run_button = w.Button(
            description="Run the pack", button_style="primary", icon="play", layout=w.Layout(width="auto")
        )
        self.progress = w.IntProgress(min=0, max=len(self.checklist.cases), description="progress")
        self.status = w.HTML("Pick a system and press <b>Run the pack</b>.")
        self.show = w.Dropdown(options=["all", FAIL, NOT_RUN, NOT_APPLICABLE, PASS], description="show")
        self.group = w.Dropdown(options=["all", *(g.id for g in self.checklist.groups)], description="group")
        self.search = w.Text(placeholder="id or words of the title", description="find")
        self.sort = w.Dropdown(options=SORTS, description="sort by")
        self.results = w.HTML()
        self.case = w.Dropdown(options=[c.id for c in self.checklist.cases], description="case")
        self.detail = w.HTML()
        self.role = w.Dropdown(options=SIGNOFF_ROLES, description="role")
        self.signer = w.Text(placeholder="your name", description="name")
        self.decision = w.Dropdown(options=("", *DECISIONS), description="decision")
        self.comment = w.Textarea(placeholder="conditions, remarks", description="comment")
        self.save = w.Button(description="Save sign-off", icon="check", disabled=True, layout=w.Layout(width="auto"))
        self.signed = w.HTML()
        self.report = w.HTML()
        self.open_report = w.Button(
            description="Show the report here", icon="file", disabled=True, layout=w.Layout(width="auto")
        )
        self.report_view = w.HTML()
        self.open_report.on_click(lambda _: self._safely(self.show_report))
        self.run_button.on_click(lambda _: self._safely(self.run))
        self.save.on_click(lambda _: self._safely(self._sign_from_widgets))
        for control in (self.show, self.group, self.search, self.sort):
            control.observe(lambda _: self._show_results(), names="value")
        self.case.observe(lambda _: self._show_case(), names="value")
        self.where.observe(lambda _: self._where_changed(), names="value")
        self._where_changed()
        self.box = w.VBox(
            [
                w.HTML("<b>1. The system under test</b>"),
                self.where,
                self.url,
                self.command,
                w.HBox([self.run_button, self.progress]),
                self.status,
                w.HTML("<b>2. Results</b>"),
                w.HBox([self.show, self.group, self.sort]),
                self.search,
                self.results,
                w.HTML("<b>3. One case: steps, expected vs actual, evidence</b>"),
                self.case,
                self.detail,
                w.HTML("<b>4. Sign-off (saved with the run, filled into its report)</b>"),
                w.HBox([self.role, self.decision]),
                self.signer,
                self.comment,
                self.save,
                self.signed,
                w.HTML("<b>5. The report</b>"),
                self.report,
                self.open_report,
                self.report_view,
            ]
        )
        self.box.add_class("certify-desk")
        for name in ("where", "show", "group", "sort", "case", "role", "decision", "signer", "comment"):
            getattr(self, name).add_class(f"desk-{name}")  # stable handles for browser tests

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.box._repr_mimebundle_(**kwargs)

    # ---- running -------------------------------------------------------------------------

    def invocation(self) -> dict[str, Any]:
        """The target the widgets name, as ``oms certify`` would."""
        where = self.where.value
        if where == "scratch":
            return invocation_for()
        if where == "serve":
            if "{port}" not in self.command.value:
                raise Refused("the start command needs {port} (and usually {db})")
            return invocation_for(serve=self.command.value.strip())
        url = self.url.value.strip()
        if not url.startswith(("http://", "https://")):
            raise Refused("give the server's URL, e.g. http://127.0.0.1:8000")
        return invocation_for(url)

    def run(self) -> RunResult:
        """Run every case against the chosen system; the progress bar moves with each case."""
        invocation = self.invocation()
        token = os.environ.get("OMS_API_TOKEN") or None if self.where.value in ("shared", "url") else None
        self.progress.max, self.progress.value, self.progress.bar_style = len(self.checklist.cases), 0, ""
        self.status.value = "running..."
        self.result, self.run_dir = certify(
            invocation, self.checklist, self.checklist.cases, out=self.out, token=token, progress=self._progress
        )
        r = self.result
        self.progress.bar_style = {"CERTIFIED": "success", "FAILED": "danger"}.get(r.verdict, "warning")
        self.status.value = f"<b>{html.escape(r.verdict_line)}</b> &middot; {html.escape(self.counts())}"
        self.save.disabled = self.open_report.disabled = False
        self.report.value = self._report_link()
        self.report_view.value = ""
        self._show_results()
        first = next((x.case.id for x in r.results if x.status == FAIL), r.results[0].case.id)
        if self.case.value == first:
            self._show_case()
        self.case.value = first
        return r

    def _progress(self, i: int, n: int, r: CaseResult) -> None:
        self.progress.value = i
        self.status.value = f"{i}/{n} &middot; {html.escape(r.case.id)} {html.escape(r.status)}"

    def counts(self) -> str:
        r = self._result()
        words = {PASS: "passed", FAIL: "failed", NOT_RUN: "not run", NOT_APPLICABLE: "not applicable"}
        return ", ".join(f"{r.count(s)} {words[s]}" for s in words)

    # ---- results -------------------------------------------------------------------------

    def table(self, *, show: str = "all", group: str = "all", find: str = "", sort: str = SORTS[0]) -> pd.DataFrame:
        """The results as a frame: filtered by status, group and words, sorted."""
        r = self._result()
        rows = [
            [x.case.id, x.case.group, x.status, x.case.mandatory, ", ".join(x.case.needs), x.case.title, x.reason]
            for x in r.results
        ]
        frame = pd.DataFrame(rows, columns=COLUMNS)
        if show != "all":
            frame = frame[frame["status"] == show]
        if group != "all":
            frame = frame[frame["group"] == group]
        if find.strip():
            words = find.strip().lower()
            frame = frame[frame["id"].str.lower().str.contains(words, regex=False)
                          | frame["title"].str.lower().str.contains(words, regex=False)]  # fmt: skip
        if sort != SORTS[0]:
            order = {s: i for i, s in enumerate((FAIL, NOT_RUN, NOT_APPLICABLE, PASS))}
            key = (lambda c: c.map(order)) if sort == "status" else None
            frame = frame.sort_values(sort, key=key, kind="stable")
        return frame.reset_index(drop=True)

    def table_text(self, **filters: str) -> str:
        frame = self.table(**filters)
        return table(list(frame.columns), [[_cell(v) for v in row] for row in frame.itertuples(index=False)],
                     max_rows=len(frame))  # fmt: skip

    def _show_results(self) -> None:
        if self.result is None:
            return
        frame = self.table(show=self.show.value, group=self.group.value, find=self.search.value, sort=self.sort.value)
        head = "".join(f"<th>{c}</th>" for c in COLUMNS)
        body = "".join(
            "<tr>"
            + "".join(
                f'<td style="color:{_COLOUR[v]};font-weight:600">{v}</td>' if c == "status" else f"<td>{_e(v)}</td>"
                for c, v in zip(COLUMNS, row, strict=True)
            )
            + "</tr>"
            for row in frame.itertuples(index=False)
        )
        self.results.value = _STYLE + (
            "<div style='max-height:420px;overflow:auto'><table class='desk-results desk-table'>"
            f"<thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table></div><div>{len(frame)} of {len(self._result().results)} cases</div>"
        )

    # ---- one case ------------------------------------------------------------------------

    def case_result(self, case_id: str) -> CaseResult:
        for x in self._result().results:
            if x.case.id == case_id:
                return x
        raise KeyError(f"no case {case_id!r} in this run")

    def case_text(self, case_id: str) -> str:
        """One case as plain text: requirement, each step expected vs actual, its evidence."""
        x = self.case_result(case_id)
        lines = [x.line(), f"Requirement: {x.case.requirement}", f"Needs: {', '.join(x.case.needs)}", ""]
        rows = [[str(s.index), s.inputs, s.expected, s.actual, _mark(s.ok)] for s in x.steps]
        lines.append(table(["#", "step", "expected", "actual", "result"], rows, max_rows=len(rows)))
        for ev in x.evidence:
            lines += ["", f"Evidence: {ev.title}", table(ev.columns, ev.rows)]
        return "\n".join(lines)

    def case_html(self, case_id: str) -> str:
        """One case as the desk shows it: its line, requirement, steps and evidence tables."""
        x = self.case_result(case_id)
        status = f"<b style='color:{_COLOUR[x.status]}'>{_e(x.status)}</b>"
        parts = [
            f"<div>{status} <b>{_e(x.case.id)}</b> {_e(x.case.title)}</div>",
            f"<div><i>Requirement.</i> {_e(x.case.requirement)} <i>Needs:</i> {_e(', '.join(x.case.needs))}</div>",
        ]
        if x.reason:
            parts.append(f"<div><i>{_e(x.status)}:</i> {_e(x.reason)}</div>")
        rows = [[str(s.index), s.inputs, s.expected, s.actual, _mark(s.ok)] for s in x.steps]
        parts.append(_html_table(["#", "step", "expected", "actual", "result"], rows))
        for ev in x.evidence:
            parts += [f"<div><i>Evidence:</i> {_e(ev.title)}</div>", _html_table(ev.columns, ev.rows)]
        return _STYLE + "".join(parts)

    def _show_case(self) -> None:
        if self.result is None or not self.case.value:
            return
        self.detail.value = self.case_html(self.case.value)

    # ---- sign-off ------------------------------------------------------------------------

    def sign(self, name: str, decision: str, comment: str = "", *, role: str = SIGNOFF_ROLES[0]) -> Path:
        """Save the sign-off with the run and fill it into its report. Raises ValueError."""
        if self.run_dir is None:
            raise ValueError("run the pack first: a sign-off belongs to a run")
        path = sign(self.run_dir, role=role, name=name, decision=decision, comment=comment)
        self.signed.value = (
            f"signed by {_e(name.strip())} ({_e(role)}): {_e(decision)} &middot; saved in {_e(path.name)}"
        )
        return path

    def _sign_from_widgets(self) -> None:
        self.sign(self.signer.value, self.decision.value, self.comment.value, role=self.role.value)

    # ---- helpers -------------------------------------------------------------------------

    def _result(self) -> RunResult:
        if self.result is None:
            raise ValueError("run the pack first")
        return self.result

    def show_report(self) -> str:
        """The run's report.html (sign-off included), shown in the notebook itself."""
        if self.run_dir is None:
            raise ValueError("run the pack first")
        report = (self.run_dir / "report.html").read_text(encoding="utf-8")
        self.report_view.value = (
            f'<iframe srcdoc="{html.escape(report, quote=True)}" style="width:100%;height:640px;'
            'border:1px solid #ccc" title="certification report"></iframe>'
        )
        return report

    def _report_link(self) -> str:
        assert self.run_dir is not None
        return (f"report: <code>{_e(self.run_dir / 'report.html')}</code> (open it in a browser, or below)"
                " &middot; junit.xml, summary.md, results.json and signoff.json beside it")  # fmt: skip

    def _where_changed(self) -> None:
        where = self.where.value
        self.url.layout.display = "" if where in ("url", "shared") else "none"
        self.command.layout.display = "" if where == "serve" else "none"
        if where == "shared":
            self.url.value = os.environ.get("OMS_URL", "")
            self.url.disabled = True
            self.status.value = "The pack <b>writes orders</b> into the book it certifies."
        else:
            self.url.disabled = False

    def _safely(self, action: Any) -> None:
        """A button's action: a refusal is shown on the desk, never raised into the kernel."""
        try:
            action()
        except (Refused, ValueError) as e:
            self.status.value = f"<span style='color:#c62828'>{_e(e)}</span>"


_STYLE = (
    "<style>.desk-table{border-collapse:collapse;font-size:12px;margin:4px 0}"
    ".desk-table th,.desk-table td{border:1px solid #d0d0d0;padding:2px 6px;text-align:left;vertical-align:top}"
    ".desk-table th{background:#f4f4f6;position:sticky;top:0}</style>"
)


def _html_table(columns: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table class='desk-table'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _mark(ok: bool | None) -> str:
    return {True: "ok", False: "FAILED", None: "-"}[ok]


def _e(value: Any) -> str:
    return html.escape(_cell(value), quote=True)
