"""Reports of a certification run: a self-contained HTML evidence report, JUnit XML, a
Markdown summary and a JSON record, each in a new run directory (history is kept).

Adapter layer (files only). Everything a report says about the cases is deterministic
for a deterministic run; what varies by machine and moment -- software versions, git
commit, date, durations, paths, the run number -- sits in one clearly marked
environment section (between ``<!-- environment:begin -->`` and
``<!-- environment:end -->`` in HTML and Markdown; ``time``/``timestamp`` attributes and
``<properties>`` in JUnit). The lifecycle diagram is an inline SVG drawn from
``TRANSITIONS``; no script, stylesheet or font is fetched from anywhere.
"""

from __future__ import annotations

import html
import json
import os
import platform
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import oms
from oms.certification import needs as needs_
from oms.certification.runner import FAIL, NOT_APPLICABLE, NOT_RUN, PASS, CaseResult, RunResult
from oms.lifecycle import INITIAL_STATUS, TERMINAL, TRANSITIONS, Status, to_markdown, to_mermaid

ENV_BEGIN, ENV_END = "<!-- environment:begin -->", "<!-- environment:end -->"
HISTORY_BEGIN, HISTORY_END = "<!-- history:begin -->", "<!-- history:end -->"
SIGNOFF_BEGIN, SIGNOFF_END = "<!-- signoff:begin -->", "<!-- signoff:end -->"
SIGNOFF_ROLES = ("Test lead", "Reviewer (venue / broker)")
"""Around what depends on earlier runs (the comparison with the previous run of the target)."""
VERDICT_TEXT = {
    "CERTIFIED": "every mandatory case that applies to the system ran and passed",
    "FAILED": "at least one case failed (or a required tier is not offered)",
    "INCOMPLETE": "nothing failed, but some mandatory case was not run",
}


# ---- environment ------------------------------------------------------------------------


def environment(result: RunResult, target_detail: str = "") -> dict[str, str]:
    """Software identification and run facts: the part of a report that varies."""
    try:
        import duckdb

        duckdb_version = duckdb.__version__
    except ImportError:  # pragma: no cover
        duckdb_version = "not installed"
    return {
        "oms version": oms.__version__,
        "git commit": git_commit(),
        "Python": f"{platform.python_version()} ({sys.executable})",
        "DuckDB": duckdb_version,
        "platform": platform.platform(),
        "host": platform.node(),
        "target": result.target_description + (f" ({target_detail})" if target_detail else ""),
        "finished at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "duration": f"{result.seconds:.2f} s",
        "checklist file": result.checklist.source,
        **({"started as": result.started_as} if result.started_as else {}),
    }


def identification(result: RunResult) -> list[list[str]]:
    """What was certified, with what: the rows a reviewer signs under (deterministic)."""
    offer = result.offer
    rows = [
        ["system under test", result.target_description],
        ["the system says about itself", (offer.server if offer and offer.server else "nothing")],
        ["tiers and extensions offered", needs_.offer_text(result.offers)],
        ["how the offer was found", offer.how if offer else "all (our engine)"],
    ]
    if result.required - {"core"}:
        rows.append(["required by the operator", ", ".join(sorted(result.required))])
    if result.retest_of:
        rows.append(["retest of", result.retest_of])
    rows += [
        ["checklist", f"{result.checklist.title} {result.checklist.version}"],
        ["checklist sha256", result.checklist.sha256],
        ["pack version", f"oms.certification {result.pack_version}"],
    ]
    return rows


def git_commit() -> str:
    root = Path(oms.__file__).resolve().parents[1]
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown (git not available)"
    if out.returncode != 0:
        return "unknown (not a git checkout)"
    return out.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else "")


# ---- run directories ----------------------------------------------------------------------


def new_run_dir(out: str | os.PathLike[str]) -> Path:
    """A new ``run-NNN`` directory under ``out``: never an existing one (history is kept)."""
    base = Path(out)
    base.mkdir(parents=True, exist_ok=True)
    numbers = [int(p.name[4:]) for p in base.glob("run-*") if p.name[4:].isdigit()]
    n = max(numbers, default=0) + 1
    while True:
        path = base / f"run-{n:03d}"
        try:
            path.mkdir()
            return path
        except FileExistsError:  # another run took it a moment ago
            n += 1


def write_reports(
    result: RunResult, out: str | os.PathLike[str], *, run_dir: Path | None = None, target_detail: str = ""
) -> Path:
    """Write report.html, junit.xml, summary.md and results.json into a new run directory
    under ``out`` and append the run to ``out/history.md``. Returns the run directory."""
    run_dir = run_dir or new_run_dir(out)
    result.changes = compare_with_previous(Path(out), run_dir, result)
    env = environment(result, target_detail)
    env["run"] = run_dir.name
    (run_dir / "report.html").write_text(html_report(result, env), encoding="utf-8")
    (run_dir / "junit.xml").write_text(junit_xml(result, env), encoding="utf-8")
    (run_dir / "summary.md").write_text(markdown_summary(result, env), encoding="utf-8")
    (run_dir / "results.json").write_text(json.dumps(results_json(result), indent=2) + "\n", encoding="utf-8")
    _append_history(Path(out), run_dir, result, env)
    return run_dir


def compare_with_previous(base: Path, run_dir: Path, result: RunResult) -> dict[str, Any] | None:
    """What changed since the previous run of the same target under ``base`` (the run a
    retest retests, else the newest earlier run with the same invocation), or None."""
    previous = None
    if result.retest_of and (base / result.retest_of / "results.json").is_file():
        previous = base / result.retest_of
    else:
        for candidate in sorted(base.glob("run-*"), key=lambda p: p.name, reverse=True):
            if candidate.name >= run_dir.name:
                continue
            data = _read_results(candidate)
            if data is not None and data.get("invocation", {}).get("identity") == result.invocation.get("identity"):
                previous = candidate
                break
    data = _read_results(previous) if previous else None
    if data is None or previous is None:
        return None
    before = {c["id"]: c["status"] for c in data.get("cases", [])}
    now = {r.case.id: r.status for r in result.results}
    changed = {cid: (before[cid], st) for cid, st in now.items() if cid in before and before[cid] != st}
    return {
        "previous": previous.name,
        "newly failing": sorted(cid for cid, (_, st) in changed.items() if st == FAIL),
        "newly passing": sorted(cid for cid, (_, st) in changed.items() if st == PASS),
        "other changes": sorted(f"{cid} {a} -> {b}" for cid, (a, b) in changed.items() if b not in (FAIL, PASS)),
    }


def _read_results(run: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((run / "results.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _append_history(base: Path, run_dir: Path, result: RunResult, env: dict[str, str]) -> None:
    history = base / "history.md"
    if not history.exists():
        history.write_text(
            "# Certification runs\n\n| run | finished | target | verdict | pass | fail | not run | not applicable "
            "| retest of | since the previous run of the target |\n|---|---|---|---|---|---|---|---|---|---|\n",
            encoding="utf-8",
        )
    changes = result.changes
    since = "first run" if changes is None else _changes_text(changes)
    with history.open("a", encoding="utf-8") as f:
        f.write(
            f"| [{run_dir.name}]({run_dir.name}/report.html) | {env['finished at']} | {_md(result.target_description)} "
            f"| {_md(result.verdict_line)} | {result.count(PASS)} | {result.count(FAIL)} | {result.count(NOT_RUN)} "
            f"| {result.count(NOT_APPLICABLE)} | {result.retest_of or ''} | {_md(since)} |\n"
        )


def _changes_text(changes: dict[str, Any]) -> str:
    parts = [f"vs {changes['previous']}"]
    for key in ("newly failing", "newly passing", "other changes"):
        if changes[key]:
            parts.append(f"{key}: {', '.join(changes[key])}")
    if len(parts) == 1:
        parts.append("no change")
    return "; ".join(parts)


# ---- JSON -----------------------------------------------------------------------------------


def results_json(result: RunResult) -> dict[str, Any]:
    """The run as data (deterministic: no durations)."""
    offer = result.offer
    return {
        "verdict": result.verdict,
        "verdict_line": result.verdict_line,
        "exit_code": result.exit_code,
        "target": result.target_description,
        "invocation": result.invocation,
        "offers": sorted(result.offers),
        "offer_how": offer.how if offer else "",
        "probes": [list(p) for p in offer.probes] if offer else [],
        "server": offer.server if offer else None,
        "required": sorted(result.required),
        "retest_of": result.retest_of,
        "checklist_sha256": result.checklist.sha256,
        "pack_version": result.pack_version,
        "cases": [
            {
                "id": r.case.id,
                "group": r.case.group,
                "title": r.case.title,
                "mandatory": r.case.mandatory,
                "generated": r.case.generated,
                "status": r.status,
                "reason": r.reason,
                "needs": list(r.case.needs),
                "steps": [
                    {
                        "n": s.index,
                        "action": s.action,
                        "inputs": s.inputs,
                        "expected": s.expected,
                        "actual": s.actual,
                        "ok": s.ok,
                    }
                    for s in r.steps
                ],
                "evidence": [{"title": e.title, "columns": e.columns, "rows": e.rows} for e in r.evidence],
            }
            for r in result.results
        ],
        "coverage": result.coverage(),
    }


# ---- JUnit ----------------------------------------------------------------------------------


def junit_xml(result: RunResult, env: dict[str, str]) -> str:
    """One testsuite per group, one testcase per case; NOT RUN is <skipped>."""
    root = ET.Element(
        "testsuites",
        name="OMS certification",
        tests=str(len(result.results)),
        failures=str(result.count(FAIL)),
        skipped=str(result.count(NOT_RUN) + result.count(NOT_APPLICABLE)),
        time=f"{result.seconds:.3f}",
    )
    for group in result.checklist.groups:
        cases = [r for r in result.results if r.case.group == group.id]
        if not cases:
            continue
        suite = ET.SubElement(
            root,
            "testsuite",
            name=f"{group.id} {group.name}",
            tests=str(len(cases)),
            failures=str(sum(r.status == FAIL for r in cases)),
            skipped=str(sum(r.status in (NOT_RUN, NOT_APPLICABLE) for r in cases)),
            errors="0",
            time=f"{sum(r.seconds for r in cases):.3f}",
            timestamp=_iso(env["finished at"]),
        )
        props = ET.SubElement(suite, "properties")
        for key, value in env.items():
            ET.SubElement(props, "property", name=key, value=value)
        for r in cases:
            tc = ET.SubElement(
                suite,
                "testcase",
                classname=f"certification.{group.id}",
                name=f"{r.case.id} {r.case.title}",
                time=f"{r.seconds:.3f}",
            )
            steps = "\n".join(_step_line(s) for s in r.steps)
            if r.status == FAIL:
                ET.SubElement(tc, "failure", message=r.reason, type="CertificationFailure").text = steps
            elif r.status in (NOT_RUN, NOT_APPLICABLE):
                ET.SubElement(
                    tc, "skipped", message=f"{r.status}: {r.reason}" + ("" if r.case.mandatory else " (optional)")
                )
            ET.SubElement(tc, "system-out").text = steps
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _iso(finished: str) -> str:
    """JUnit wants an ISO-8601 timestamp without zone: 2026-01-05T09:15:00."""
    return finished.replace(" UTC", "").replace(" ", "T")


def _step_line(s: Any) -> str:
    mark = {True: "ok", False: "FAILED", None: "-"}[s.ok]
    return f"{s.index}. [{mark}] {s.inputs} | expected: {s.expected} | actual: {s.actual}"


# ---- Markdown -------------------------------------------------------------------------------


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown_summary(result: RunResult, env: dict[str, str]) -> str:
    lines = [
        "# OMS certification summary",
        "",
        f"**Verdict: {result.verdict_line}** -- {VERDICT_TEXT[result.verdict]} (exit code {result.exit_code}).",
        "",
        "| | |",
        "|---|---|",
        *[f"| {_md(k)} | {_md(v)} |" for k, v in identification(result)],
        "",
        HISTORY_BEGIN,
        f"Since the previous run of this target: {_changes_text(result.changes) if result.changes else 'first run'}.",
        HISTORY_END,
        "",
        "| cases | pass | fail | not run | not applicable | mandatory not run |",
        "|---|---|---|---|---|---|",
        f"| {len(result.results)} | {result.count(PASS)} | {result.count(FAIL)} | {result.count(NOT_RUN)} "
        f"| {result.count(NOT_APPLICABLE)} | {result.count(NOT_RUN, mandatory=True)} |",
        "",
        "## By group",
        "",
        "| group | cases | pass | fail | not run | not applicable |",
        "|---|---|---|---|---|---|",
    ]
    for group in result.checklist.groups:
        rs = [r for r in result.results if r.case.group == group.id]
        if rs:
            lines.append(
                f"| {group.id} {group.name} | {len(rs)} | {sum(r.status == PASS for r in rs)} "
                f"| {sum(r.status == FAIL for r in rs)} | {sum(r.status == NOT_RUN for r in rs)} "
                f"| {sum(r.status == NOT_APPLICABLE for r in rs)} |"
            )
    attention = [r for r in result.results if r.status != PASS]
    lines += ["", "## Failed, not run and not applicable", ""]
    lines += [
        f"- **{r.status}** {r.case.id} {_md(r.case.title)}{'' if r.case.mandatory else ' (optional)'}: {_md(r.reason)}"
        for r in attention
    ] or ["(none)"]
    lines += [
        "",
        "## Lifecycle coverage",
        "",
        "| from \\ action | " + " | ".join(_actions()) + " |",
        "|---" * (len(_actions()) + 1) + "|",
    ]
    cov = result.coverage()
    for status in Status:
        cells = [c for c in cov if c["status"] == status.value]
        lines.append(
            f"| {status.value} | "
            + " | ".join(f"{c['to'] or 'refused'}: {c['case']} {c['result']}" for c in cells)
            + " |"
        )
    lines += ["", "## Cases", "", "| id | title | mandatory | result |", "|---|---|---|---|"]
    lines += [
        f"| {r.case.id} | {_md(r.case.title)} | {'yes' if r.case.mandatory else 'no'} | {r.status} |"
        for r in result.results
    ]
    lines += [
        "",
        "## Sign-off",
        "",
        "| role | name | date | decision |",
        "|---|---|---|---|",
        "| Test lead | | | |",
        "| Reviewer (venue / broker) | | | |",
        "",
    ]
    lines += [ENV_BEGIN, "## Environment (varies by machine and run)", ""]
    lines += [f"- {k}: {_md(v)}" for k, v in env.items()]
    lines += [ENV_END, ""]
    return "\n".join(lines)


def _actions() -> list[str]:
    from oms.lifecycle import COMMANDS

    return [a.value for a in COMMANDS]


# ---- the lifecycle as an inline SVG -----------------------------------------------------------


def lifecycle_svg() -> str:
    """The state diagram drawn from TRANSITIONS: statuses in columns by their longest
    distance from NEW, one arrow per allowed transition, terminal statuses double-framed."""
    layer: dict[Status, int] = {INITIAL_STATUS: 0}
    for _ in range(len(Status)):
        for (src, _action), dst in TRANSITIONS.items():
            if src in layer and dst != src and layer.get(dst, -1) < layer[src] + 1:
                layer[dst] = layer[src] + 1
    columns: dict[int, list[Status]] = {}
    for s in Status:
        columns.setdefault(layer.get(s, max(layer.values()) + 1), []).append(s)
    w, h, gap_x, gap_y = 130, 40, 230, 120
    height = max(len(v) for v in columns.values()) * gap_y + 40
    pos = {}
    for col, statuses in columns.items():
        for i, s in enumerate(statuses):
            pos[s] = (150 + col * gap_x, height / 2 + (i - (len(statuses) - 1) / 2) * gap_y)
    width = 150 + (max(columns) + 1) * gap_x - 60
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height:.0f}" '
        f'viewBox="0 0 {width} {height:.0f}" role="img" aria-label="order lifecycle state diagram">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#444"/></marker></defs>',
    ]
    sx, sy = pos[INITIAL_STATUS]
    parts.append(f'<circle cx="14" cy="{sy:.0f}" r="8" fill="#222"/>')
    parts.append(_edge(22, sy, sx - w / 2, sy, "create"))
    for (src, action), dst in TRANSITIONS.items():
        (x1, y1), (x2, y2) = pos[src], pos[dst]
        parts.append(_edge(*_border(x1, y1, x2, y2, w, h), *_border(x2, y2, x1, y1, w, h), action.value))
    for s, (x, y) in pos.items():
        fill = "#eef5ff" if s not in TERMINAL else "#f3f3f3"
        parts.append(
            f'<rect x="{x - w / 2:.0f}" y="{y - h / 2:.0f}" width="{w}" height="{h}" rx="8" fill="{fill}" '
            f'stroke="#335" stroke-width="1.5"/>'
        )
        if s in TERMINAL:
            parts.append(
                f'<rect x="{x - w / 2 + 4:.0f}" y="{y - h / 2 + 4:.0f}" width="{w - 8}" height="{h - 8}" '
                f'rx="6" fill="none" stroke="#335" stroke-width="1"/>'
            )
        parts.append(
            f'<text x="{x:.0f}" y="{y + 5:.0f}" text-anchor="middle" font-size="14" '
            f'font-family="sans-serif" font-weight="bold">{s.value}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


def _border(x1: float, y1: float, x2: float, y2: float, w: float, h: float) -> tuple[float, float]:
    """Where the line from box centre (x1, y1) towards (x2, y2) leaves the box."""
    dx, dy = x2 - x1, y2 - y1
    if dx == 0 and dy == 0:
        return x1, y1
    scale = min((w / 2) / abs(dx) if dx else float("inf"), (h / 2) / abs(dy) if dy else float("inf"))
    return x1 + dx * scale, y1 + dy * scale


def _edge(x1: float, y1: float, x2: float, y2: float, label: str) -> str:
    mx, my = (x1 + x2) / 2, (y1 + y2) / 2
    return (
        f'<line x1="{x1:.0f}" y1="{y1:.0f}" x2="{x2:.0f}" y2="{y2:.0f}" stroke="#444" stroke-width="1.5" '
        f'marker-end="url(#arrow)"/><text x="{mx:.0f}" y="{my - 6:.0f}" text-anchor="middle" font-size="12" '
        f'font-family="sans-serif" fill="#1a4d8f" paint-order="stroke" stroke="#fff" stroke-width="4">'
        f"{label}</text>"
    )


# ---- HTML -----------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;
margin:0 auto;max-width:1180px;padding:24px;color:#1d1d1f;line-height:1.4}
h1{margin:0 0 4px}
h2{margin-top:32px;border-bottom:2px solid #ddd;padding-bottom:4px}
h3{margin:24px 0 8px}
table{border-collapse:collapse;margin:8px 0;font-size:13px}
th,td{border:1px solid #d0d0d0;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f6}
td.num{text-align:right}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;
font-weight:600;font-size:12px;color:#fff;min-width:56px;text-align:center}
.PASS{background:#1e7d32}
.FAIL{background:#c62828}
.NOTRUN{background:#8a6d00}
.verdict{font-size:22px;padding:10px 16px;border-radius:8px;display:inline-block;color:#fff;margin:8px 0}
.CERTIFIED{background:#1e7d32}
.FAILED{background:#c62828}
.INCOMPLETE{background:#8a6d00}
details{border:1px solid #e0e0e0;border-radius:6px;margin:6px 0;padding:4px 10px}
details[open]{background:#fcfcfd}
summary{cursor:pointer;font-size:14px}
summary .id{font-family:ui-monospace,monospace;font-weight:600;margin:0 6px}
.meta{font-size:13px;color:#444;margin:6px 0}
.opt{color:#666;font-size:12px}
td.ok{color:#1e7d32;font-weight:600}
td.bad{color:#c62828;font-weight:600}
td.skip{color:#8a6d00}
code,.mono{font-family:ui-monospace,monospace;font-size:12px}
.grid td{text-align:center;min-width:140px}
.cell-ok{background:#e8f5e9}
.cell-ref{background:#fff3e0}
.cell-bad{background:#ffebee}
.env{background:#f7f7f9;border:1px dashed #aaa;padding:8px 16px;border-radius:6px}
.signoff td{height:28px;min-width:160px}
.NOTAPPLICABLE{background:#607d8b}
.ident td:first-child{font-weight:600;background:#f4f4f6}
@media print{
body{max-width:none;padding:0;font-size:11px;-webkit-print-color-adjust:exact;print-color-adjust:exact}
details{break-inside:avoid-page;border:none;padding:0}
details::details-content{content-visibility:visible;display:block}
summary{list-style:none}
a{color:inherit;text-decoration:none}
}
"""
_PRINT_JS = (
    "addEventListener('beforeprint',function(){"
    "document.querySelectorAll('details').forEach(function(d){d.open=true})});"
)
"""Printing opens every case, so a printed report carries all its steps and evidence."""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _badge(status: str) -> str:
    return f'<span class="badge {status.replace(" ", "")}">{_e(status)}</span>'


def _table(columns: list[str], rows: list[list[str]], cls: str = "") -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def html_report(result: RunResult, env: dict[str, str]) -> str:
    r = result
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>OMS certification report</title>",
        f"<style>{_CSS}</style>",
        f"<script>{_PRINT_JS}</script></head><body>",
        "<h1>OMS certification report</h1>",
        f'<div class="meta">{_e(r.checklist.title)} {_e(r.checklist.version)} &middot; '
        f"target: <b>{_e(r.target_description)}</b></div>",
        f'<div class="verdict {r.verdict}">{_e(r.verdict_line)}</div> '
        f'<span class="meta">{_e(VERDICT_TEXT[r.verdict])} &middot; exit code {r.exit_code}</span>',
        "<h2>System under test</h2>",
        _rows(identification(r), cls="ident"),
        _probes_html(r),
        HISTORY_BEGIN,
        _changes_html(r),
        HISTORY_END,
        "<h2>Summary</h2>",
        _table(
            ["cases", "pass", "fail", "not run", "not applicable", "mandatory cases", "mandatory not run"],
            [
                [
                    str(len(r.results)),
                    str(r.count(PASS)),
                    str(r.count(FAIL)),
                    str(r.count(NOT_RUN)),
                    str(r.count(NOT_APPLICABLE)),
                    str(sum(x.case.mandatory for x in r.results)),
                    str(r.count(NOT_RUN, mandatory=True)),
                ]
            ],
        ),
    ]
    rows = []
    for group in r.checklist.groups:
        rs = [x for x in r.results if x.case.group == group.id]
        if rs:
            rows.append(
                [
                    f"{group.id}",
                    group.name,
                    str(len(rs)),
                    str(sum(x.status == PASS for x in rs)),
                    str(sum(x.status == FAIL for x in rs)),
                    str(sum(x.status == NOT_RUN for x in rs)),
                    str(sum(x.status == NOT_APPLICABLE for x in rs)),
                ]
            )
    out.append(_table(["group", "name", "cases", "pass", "fail", "not run", "not applicable"], rows))
    attention = [x for x in r.results if x.status != PASS]
    out.append("<h3>Failed, not run and not applicable</h3>")
    if attention:
        out.append(
            "<ul>"
            + "".join(
                f'<li>{_badge(x.status)} <a href="#{x.case.id}" class="mono">{_e(x.case.id)}</a> {_e(x.case.title)}'
                f"{'' if x.case.mandatory else ' <span class=opt>(optional)</span>'}: {_e(x.reason)}</li>"
                for x in attention
            )
            + "</ul>"
        )
    else:
        out.append("<p>None: every case ran and passed.</p>")
    out += [
        "<h3>Sign-off</h3>",
        SIGNOFF_BEGIN,
        signoff_html([]),
        SIGNOFF_END,
        "<h2>Lifecycle and coverage</h2>",
        "<p class=meta>Drawn from <code>oms.lifecycle.TRANSITIONS</code>. Every cell of the grid below is a generated "
        "case (LC-&lt;STATUS&gt;-&lt;ACTION&gt;): allowed cells must reach their status, refused cells must be refused "
        "with INVALID_TRANSITION and change nothing. &ldquo;also&rdquo; lists hand-written cases whose commands "
        "exercised the cell.</p>",
        lifecycle_svg(),
        _coverage_html(r),
        "<details><summary>Mermaid source and Markdown table</summary><pre class=mono>"
        + _e(to_mermaid())
        + "</pre><pre class=mono>"
        + _e(to_markdown())
        + "</pre></details>",
        *_fix_mapping_html(),
    ]
    for group in r.checklist.groups:
        rs = [x for x in r.results if x.case.group == group.id]
        if not rs:
            continue
        out.append(f'<h2 id="group-{group.id}">{_e(group.id)} &middot; {_e(group.name)}</h2>')
        if group.description:
            out.append(f"<p class=meta>{_e(group.description)}</p>")
        out += [_case_html(x) for x in rs]
    out += [
        ENV_BEGIN,
        '<h2>Environment <span class="opt">(varies by machine and run; everything above is '
        "reproducible for the default target)</span></h2>",
        '<div class="env">',
        _table(["field", "value"], [[k, v] for k, v in env.items()]),
        "</div>",
        ENV_END,
        "</body></html>",
        "",
    ]
    return "\n".join(out)


def signoff_html(entries: list[dict[str, str]]) -> str:
    """The sign-off table: one row per role, filled from the entries saved with the run."""
    by_role = {e.get("role"): e for e in entries}
    rows = []
    for role in SIGNOFF_ROLES + tuple(r for r in by_role if r not in SIGNOFF_ROLES and r):
        e = by_role.get(role, {})
        cells = [role, e.get("name", ""), e.get("date", ""), e.get("decision", ""), e.get("comment", "")]
        rows.append("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in cells) + "<td></td></tr>")
    head = "".join(f"<th>{h}</th>" for h in ("role", "name", "date", "decision", "comment", "signature"))
    return f'<table class="signoff"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def sign(run_dir: Path, *, role: str, name: str, decision: str, comment: str = "", date: str | None = None) -> Path:
    """Save one sign-off with the run (``signoff.json``, one entry per role, the newest
    wins) and fill it into the run's ``report.html``. Returns the signoff.json path.
    Raises ValueError naming what is missing."""
    if not name.strip():
        raise ValueError("the sign-off needs a name")
    if decision not in DECISIONS:
        raise ValueError(f"the decision is one of {', '.join(DECISIONS)}")
    if role not in SIGNOFF_ROLES:
        raise ValueError(f"the role is one of {', '.join(SIGNOFF_ROLES)}")
    path = run_dir / "signoff.json"
    entries = [e for e in _signoffs(path) if e.get("role") != role]
    when = date or datetime.now(UTC).strftime("%Y-%m-%d")
    entries.append({"role": role, "name": name.strip(), "date": when, "decision": decision, "comment": comment})
    path.write_text(json.dumps(entries, indent=2) + "\n", encoding="utf-8")
    report = run_dir / "report.html"
    text = report.read_text(encoding="utf-8")
    i, j = text.index(SIGNOFF_BEGIN) + len(SIGNOFF_BEGIN), text.index(SIGNOFF_END)
    report.write_text(text[:i] + signoff_html(entries) + text[j:], encoding="utf-8")
    return path


DECISIONS = ("certified", "certified with conditions", "not certified")


def _signoffs(path: Path) -> list[dict[str, str]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [e for e in data if isinstance(e, dict)] if isinstance(data, list) else []


def _rows(rows: list[list[str]], cls: str) -> str:
    """A two-column table of labelled values (no header row)."""
    body = "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in rows)
    return f'<table class="{cls}"><tbody>{body}</tbody></table>'


def _probes_html(r: RunResult) -> str:
    if not r.offer or not r.offer.probes:
        return ""
    rows = [list(p) for p in r.offer.probes]
    return "<p class=meta>How the offer was found:</p>" + _table(["request", "answer", "conclusion"], rows)


def _changes_html(r: RunResult) -> str:
    c = r.changes
    if c is None:
        return "<p class=meta>First run of this target in this folder: nothing to compare.</p>"
    items = [
        f"<li><b>{_e(k)}</b>: {_e(', '.join(c[k]))}</li>"
        for k in ("newly failing", "newly passing", "other changes")
        if c[k]
    ]
    body = f"<ul>{''.join(items)}</ul>" if items else "<p class=meta>No case changed its result.</p>"
    return f"<h3>Since {_e(c['previous'])} (the previous run of this target)</h3>{body}"


def _coverage_html(r: RunResult) -> str:
    from oms.lifecycle import COMMANDS

    cov = r.coverage()
    head = "<tr><th>from \\ action</th>" + "".join(f"<th>{a.value}</th>" for a in COMMANDS) + "</tr>"
    body = []
    for status in Status:
        cells = []
        for c in (c for c in cov if c["status"] == status.value):
            cls = "cell-bad" if c["result"] != PASS else ("cell-ok" if c["to"] else "cell-ref")
            also = f"<br><span class=opt>also: {_e(', '.join(c['also']))}</span>" if c["also"] else ""
            cells.append(
                f'<td class="{cls}"><b>{_e(c["to"] or "refused")}</b><br>'
                f'<a class=mono href="#{_e(c["case"])}">{_e(c["case"])}</a> {_badge(c["result"])}{also}</td>'
            )
        body.append(f"<tr><th>{status.value}</th>{''.join(cells)}</tr>")
    return f'<table class="grid"><thead>{head}</thead><tbody>{"".join(body)}</tbody></table>'


def _fix_mapping_html() -> list[str]:
    """DESIGN.md's FIX 4.4 face, from the one table in code (``oms.fix.mapping.TABLE``)."""
    from oms.fix.mapping import OTHER, TABLE

    rows = [
        [row.kind.replace("_", " "), "any other" if row.oms == OTHER else row.oms,
         f"{row.tag}" if row.kind == "field" else f"{row.tag}={row.value}", row.name, row.note]
        for row in TABLE
    ]  # fmt: skip
    return [
        "<h2>FIX 4.4 face</h2>",
        "<p class=meta>Drawn from <code>oms.fix.mapping.TABLE</code>. Over FIX (group FX, and every order case "
        "when the target has a FIX face) each ExecutionReport and OrderCancelReject is held to it.</p>",
        "<details><summary>The mapping: fields, enumerations, requests, reports and reason codes</summary>",
        _table(["kind", "OMS", "FIX", "name", "note"], rows),
        "</details>",
    ]


def _case_html(x: CaseResult) -> str:
    c = x.case
    opened = " open" if x.status == FAIL else ""
    flags = ("" if c.mandatory else " <span class=opt>(optional)</span>") + (
        " <span class=opt>(generated)</span>" if c.generated else ""
    )
    parts = [
        f'<details id="{_e(c.id)}"{opened}><summary>{_badge(x.status)}<span class="id">{_e(c.id)}</span>'
        f"{_e(c.title)}{flags}</summary>",
        f"<div class=meta><b>Requirement.</b> {_e(c.requirement)}</div>",
    ]
    if c.fix:
        parts.append(f"<div class=meta><b>FIX.</b> {_e(c.fix)}</div>")
    parts.append(f"<div class=meta><b>Needs.</b> {_e(', '.join(c.needs))}</div>")
    if x.reason:
        parts.append(f"<div class=meta><b>{_e(x.status)}:</b> {_e(x.reason)}</div>")
    rows = []
    for s in x.steps:
        cls, mark = {True: ("ok", "ok"), False: ("bad", "FAILED"), None: ("skip", "-")}[s.ok]
        rows.append(
            f"<tr><td class=num>{s.index}</td><td class=mono>{_e(s.inputs)}</td><td>{_e(s.expected)}</td>"
            f'<td>{_e(s.actual)}</td><td class="{cls}">{mark}</td></tr>'
        )
    parts.append(
        "<table><thead><tr><th>#</th><th>step</th><th>expected</th><th>actual</th><th>result</th></tr>"
        f"</thead><tbody>{''.join(rows)}</tbody></table>"
    )
    for ev in x.evidence:
        parts.append(f"<div class=meta><b>Evidence:</b> {_e(ev.title)}</div>")
        parts.append(_table(ev.columns, ev.rows) if ev.rows else "<div class=meta>(no rows)</div>")
    parts.append("</details>")
    return "\n".join(parts)
