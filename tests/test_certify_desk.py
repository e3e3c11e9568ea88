"""The certification desk of notebooks/certify_a_system.ipynb, driven as a person would
(``.value = ...``, ``.click()``) and by its public methods: pick a system, run with a
moving progress bar, filter and sort the results, open a case, sign off into the run."""

from __future__ import annotations

import json
from pathlib import Path

from oms.certification.desk import CertifyDesk

MINIMAL = Path(__file__).parent / "faulty_oms" / "minimal_oms.py"


def test_run_by_click_on_the_scratch_book_moves_the_bar_and_shows_the_verdict(tmp_path: Path) -> None:
    desk = CertifyDesk(out=tmp_path)
    seen: list[int] = []
    desk.progress.observe(lambda change: seen.append(change["new"]), names="value")
    desk.run_button.click()
    assert desk.result is not None and desk.result.verdict == "CERTIFIED"
    assert seen[-1] == len(desk.checklist.cases) == desk.progress.value and len(seen) > 50  # it moved case by case
    assert "CERTIFIED (core, read, audit; extensions: events_log, sql)" in desk.status.value
    assert desk.progress.bar_style == "success"
    assert (tmp_path / "run-001" / "report.html").is_file() and "run-001" in desk.report.value
    assert desk.results.value.count("<tr>") == len(desk.checklist.cases) + 1
    assert "<b>OE-010</b>" in desk.detail.value and "<th>expected</th>" in desk.detail.value


def test_the_results_filter_search_and_sort_as_the_dropdowns_say(tmp_path: Path) -> None:
    desk = CertifyDesk(out=tmp_path)
    desk.run()
    desk.show.value = "NOT APPLICABLE"
    applicable = desk.table(show="NOT APPLICABLE")
    faces = {c.id for c in desk.checklist.cases if {"raw_http", "fix"} & set(c.needs)}
    assert set(applicable["status"]) == {"NOT APPLICABLE"} and set(applicable["id"]) == faces
    assert f"{len(applicable)} of {len(desk.checklist.cases)} cases" in desk.results.value
    desk.show.value, desk.group.value = "all", "CA"
    assert desk.results.value.count("<tr>") == 1 + len(desk.checklist.group("CA").cases)
    assert list(desk.table(find="kill -9")["id"]) == [
        c.id for c in desk.checklist.cases if "kill -9" in c.title.lower()
    ]
    by_status = desk.table(sort="status")
    assert list(by_status["status"])[-1] == "PASS" and by_status["status"].iloc[0] == "NOT APPLICABLE"


def test_a_faulty_system_opens_on_its_first_failure_and_can_be_signed_not_certified(tmp_path: Path) -> None:
    desk = CertifyDesk(where="serve", out=tmp_path)
    desk.command.value = f"{{python}} {MINIMAL} --db {{db}} --port {{port}} --fault sell-at-limit-refused"
    desk.run_button.click()
    assert desk.result is not None and desk.result.verdict == "FAILED"
    assert desk.case.value == "EX-060" and "<b>EX-060</b>" in desk.detail.value and "FAIL" in desk.detail.value
    assert "expected" in desk.case_text("EX-060") and "refused PRICE_OUTSIDE_LIMIT" in desk.case_text("EX-060")
    assert desk.table(sort="status")["status"].iloc[0] == "FAIL"
    desk.role.value, desk.decision.value = "Reviewer (venue / broker)", "not certified"
    desk.signer.value, desk.comment.value = "R. Eviewer", "fills at the limit are refused"
    desk.save.click()
    saved = json.loads((tmp_path / "run-001" / "signoff.json").read_text())
    assert [(e["role"], e["name"], e["decision"]) for e in saved] == [
        ("Reviewer (venue / broker)", "R. Eviewer", "not certified")
    ]
    report = (tmp_path / "run-001" / "report.html").read_text()
    assert "R. Eviewer" in report and "fills at the limit are refused" in report
    desk.open_report.click()
    assert desk.report_view.value.startswith("<iframe srcdoc=") and "R. Eviewer" in desk.report_view.value


def test_mistakes_are_shown_on_the_desk_never_raised(tmp_path: Path) -> None:
    desk = CertifyDesk(out=tmp_path)
    desk.save.click()  # disabled until a run, and harmless when clicked anyway
    assert "run the pack first" in desk.status.value
    desk.where.value = "url"
    desk.url.value = "not a url"
    desk.run_button.click()
    assert "give the server&#x27;s URL" in desk.status.value and desk.result is None
    desk.where.value = "serve"
    desk.command.value = "oms serve --db {db}"
    desk.run_button.click()
    assert "needs {port}" in desk.status.value
    desk.where.value = "scratch"
    desk.run()
    desk.signer.value, desk.decision.value = "  ", "certified"
    desk.save.click()
    assert "needs a name" in desk.status.value and not (tmp_path / "run-001" / "signoff.json").exists()
    assert not list(tmp_path.glob("run-*/signoff.json"))
