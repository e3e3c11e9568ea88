"""Documents generated from the checklist data: ``TEST_CASES.md`` (every case with its
steps and expected results) and ``CHECKLIST.md`` (the sign-off sheet).

    python -m oms.certification.docs        # or: oms certify --docs

Adapter layer (writes files). A test checks that the committed documents equal what
this module generates, so they never drift from ``checklist.yaml``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from oms.certification import needs as needs_
from oms.certification.checklist import DEFAULT_CHECKLIST, Case, Checklist, load
from oms.certification.steps import REGISTRY
from oms.lifecycle import to_markdown

HEADER = "<!-- Generated from checklist.yaml by `oms certify --docs`; edit the data, not this file. -->\n\n"


def _needs(case: Case) -> str:
    return ", ".join(case.needs)


def step_kinds_md() -> list[str]:
    """The step kinds, from the registry: what each needs and the keys its schema takes."""
    lines = [
        "## Step kinds",
        "",
        "Each step is one kind, with its own schema (`oms/certification/steps/`); every key is checked when "
        "the checklist loads (`oms certify --check FILE`). What a case needs is derived from its steps: "
        + "; ".join(f"`{n}` = {needs_.TEXT[n]}" for n in needs_.ALL)
        + ". Mandatory cases need only the tiers (core, read, audit), the HTTP face and the faculties.",
        "",
        "| action | needs | keys | what it checks |",
        "|---|---|---|---|",
    ]
    seen = set()
    for name, kind in REGISTRY.items():
        module = type(kind).__module__
        doc = (sys.modules[module].__doc__ or "").strip().split("\n\n")[0]
        keys = ", ".join(f"`{f.alias or k}`" for k, f in kind.Spec.model_fields.items() if k != "action")
        first = module not in seen
        seen.add(module)
        lines.append(
            f"| `{name}` | {kind.needs_text} | {keys} | {_md(' '.join(doc.split())) if first else '(as above)'} |"
        )
    return [*lines, ""]


def _md(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def test_cases_md(checklist: Checklist) -> str:
    cases = checklist.cases
    lines = [
        HEADER + f"# Test cases -- {checklist.title} {checklist.version}",
        "",
        f"{len(cases)} cases: {sum(not c.generated for c in cases)} written by hand in "
        f"`certification/checklist.yaml`, {sum(c.generated for c in cases)} generated from the lifecycle table "
        "(`LC-*`: every (status, action) cell; `UO-*`: every request on an unknown order; `FB-*`: every field "
        "bound on both sides, per command -- each run on BUY and SELL, LIMIT and MARKET orders, with and without "
        "a client order id). "
        f"{sum(c.mandatory for c in cases)} are mandatory. The plan is in [TEST_PLAN.md](TEST_PLAN.md); the "
        "sign-off sheet in [CHECKLIST.md](CHECKLIST.md). In the steps, `-> o` names the resulting order `o` for "
        "later steps, `unknown` is an order id that does not exist (`far` one halfway to the largest 64-bit "
        "id), and `{run}` is a token unique to the run "
        "(so client order ids never collide with an earlier run against the same server).",
        "",
        "The lifecycle the generated cases cover:",
        "",
        to_markdown(),
        "",
        *step_kinds_md(),
    ]
    for group in checklist.groups:
        lines += [f"## {group.id} -- {group.name}", "", group.description, ""]
        for case in group.cases:
            lines += _case_md(case)
    return "\n".join(lines).rstrip() + "\n"


def _case_md(case: Case) -> list[str]:
    meta = [f"**Requirement.** {case.requirement}"]
    if case.fix:
        meta.append(f"**FIX.** {case.fix}")
    flags = ["mandatory" if case.mandatory else "optional"]
    if case.generated:
        flags.append("generated from the lifecycle table")
    flags.append(f"needs {_needs(case)}")
    meta.append(f"**Kind.** {'; '.join(flags)}.")
    meta.append(f"**Evidence.** {', '.join(case.evidence)}.")
    lines = [
        f"### {case.id} {case.title}",
        "",
        *[m + "  " for m in meta],
        "",
        "| # | step | expected |",
        "|---|---|---|",
    ]
    lines += [f"| {i} | `{_md(s.describe())}` | {_md(s.expected())} |" for i, s in enumerate(case.steps, 1)]
    return [*lines, ""]


def checklist_md(checklist: Checklist) -> str:
    lines = [
        HEADER + f"# Certification checklist -- {checklist.title} {checklist.version}",
        "",
        "Tick each case from the evidence report of one run (`oms certify` writes it to "
        "`certification/runs/run-NNN/report.html`). A run certifies when every mandatory case that applies ran and "
        "passed (exit code 0); a case whose tier or extension the system does not offer is NOT APPLICABLE, and the "
        "verdict names what was certified. Details of every case: [TEST_CASES.md](TEST_CASES.md).",
        "",
        "Run: ______  Target: ____________________  Tiers offered: ______________  "
        "oms version / git commit: ____________________",
        "",
    ]
    for group in checklist.groups:
        lines += [
            f"## {group.id} -- {group.name}",
            "",
            "| done | id | case | mandatory | needs | evidence | result |",
            "|---|---|---|---|---|---|---|",
        ]
        for c in group.cases:
            needs = _needs(c)
            lines.append(
                f"| [ ] | {c.id} | {_md(c.title)} | {'yes' if c.mandatory else 'no'} | {needs} "
                f"| {', '.join(c.evidence)} | |"
            )
        lines.append("")
    lines += [
        "## Sign-off",
        "",
        "| role | name | date | decision | signature |",
        "|---|---|---|---|---|",
        "| Test lead | | | | |",
        "| Reviewer (venue / broker) | | | | |",
        "",
    ]
    return "\n".join(lines)


def generated(checklist: Checklist) -> dict[str, str]:
    """File name -> content of every generated document."""
    return {"TEST_CASES.md": test_cases_md(checklist), "CHECKLIST.md": checklist_md(checklist)}


def write_docs(checklist: Checklist, directory: Path) -> list[Path]:
    paths = []
    for name, text in generated(checklist).items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def main() -> int:
    for path in write_docs(load(DEFAULT_CHECKLIST), DEFAULT_CHECKLIST.parent):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
