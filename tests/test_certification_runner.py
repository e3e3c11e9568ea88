"""The runner and its reports against the embedded engine (the default target), a bare
URL, and data with a deliberately wrong expectation."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from oms.certification import EmbeddedTarget, ManagedTarget, Runner, load
from oms.certification.checklist import DEFAULT_CHECKLIST, case_from
from oms.certification.cli import main as certify_main
from oms.certification.report import ENV_BEGIN, ENV_END, HISTORY_BEGIN, HISTORY_END
from oms.certification.runner import FAIL, NOT_APPLICABLE, NOT_RUN, PASS
from oms.cli import build_parser
from oms.errors import InvalidTransition
from oms.lifecycle import Status


def certify(*argv: str) -> int:
    return certify_main(build_parser().parse_args(["certify", *argv]))


@pytest.fixture(scope="module")
def default_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two default runs (`oms certify --out DIR`) into the same DIR."""
    out = tmp_path_factory.mktemp("certify")
    assert certify("--out", str(out), "--quiet") == 0
    assert certify("--out", str(out), "--quiet") == 0
    return out


def test_the_default_run_certifies_the_embedded_engine(default_runs: Path) -> None:
    results = json.loads((default_runs / "run-001" / "results.json").read_text())
    assert results["verdict"] == "CERTIFIED"
    assert results["verdict_line"] == "CERTIFIED (core, read, audit; extensions: events_log, sql)"
    assert results["target"] == "embedded engine, fresh database, simulated clock"
    # the embedded engine has no HTTP or FIX face: those cases do not apply (never passed)
    not_applicable = [c for c in results["cases"] if c["status"] == NOT_APPLICABLE]
    faces = {"raw_http": "HTTP face", "fix": "FIX 4.4 face"}
    assert not_applicable and all(
        any(face in c["needs"] and text in c["reason"] for face, text in faces.items()) for c in not_applicable
    )
    assert any("fix" in c["needs"] for c in not_applicable) and any("raw_http" in c["needs"] for c in not_applicable)
    assert {c["status"] for c in results["cases"]} == {PASS, NOT_APPLICABLE}
    assert len(results["cases"]) == len(load().cases)


def _strip_environment(text: str) -> str:
    text = re.sub(re.escape(HISTORY_BEGIN) + ".*?" + re.escape(HISTORY_END), "", text, flags=re.S)
    return re.sub(re.escape(ENV_BEGIN) + ".*?" + re.escape(ENV_END), "", text, flags=re.S)


def test_a_second_run_adds_a_run_and_the_reports_are_identical_apart_from_environment_and_history(
    default_runs: Path,
) -> None:
    first, second = default_runs / "run-001", default_runs / "run-002"
    for name in ("report.html", "summary.md"):
        a, b = (first / name).read_text(), (second / name).read_text()
        assert a != b  # the environment section differs (run number, time) ...
        assert _strip_environment(a) == _strip_environment(b)  # ... and nothing else
    assert (first / "results.json").read_text() == (second / "results.json").read_text()

    def junit(path: Path) -> str:
        text = re.sub(r' (time|timestamp)="[^"]*"', "", (path / "junit.xml").read_text())
        return re.sub(r"<properties>.*?</properties>", "", text, flags=re.S)

    assert junit(first) == junit(second)
    history = (default_runs / "history.md").read_text()
    assert "[run-001]" in history and "[run-002]" in history
    assert "vs run-001; no change" in history  # the second run compares itself with the first
    assert "Since run-001 (the previous run of this target)" in (second / "report.html").read_text()


def test_the_html_report_is_self_contained_and_shows_every_case(default_runs: Path) -> None:
    html = (default_runs / "run-001" / "report.html").read_text()
    assert "src=" not in html and "@import" not in html  # nothing fetched: one inline print script at most
    assert not re.search(r'(href|src)="https?:', html)
    assert "<svg" in html and ">MODIFIED</text>" in html  # the lifecycle diagram, drawn inline
    assert 'class="grid"' in html  # the coverage grid
    for case in load().cases:
        assert f'id="{case.id}"' in html
    for field in ("oms version", "git commit", "Python", "DuckDB", "target"):
        assert f"<td>{field}</td>" in html
    identification = ("system under test", "the system says about itself", "tiers and extensions offered",
                      "checklist sha256", "pack version")  # fmt: skip
    for field in identification:
        assert f"<td>{field}</td>" in html
    assert load().sha256 in html
    assert "{run}" not in html and "{unknown}" not in html  # every placeholder expanded
    assert "@media print" in html and "details::details-content" in html  # prints every case open
    assert html.count("<h3>Sign-off</h3>") == 1


def test_junit_has_one_testcase_per_case_and_skips_what_did_not_run(default_runs: Path) -> None:
    root = ET.parse(default_runs / "run-001" / "junit.xml").getroot()
    cases = root.findall(".//testcase")
    assert len(cases) == len(load().cases)
    skipped = [c.get("name") for c in cases if c.find("skipped") is not None]
    faces = {c.id for c in load().cases if {"raw_http", "fix"} & set(c.needs)}  # none on the embedded engine
    assert skipped and {name.split()[0] for name in skipped} == faces  # type: ignore[union-attr]
    assert not root.findall(".//failure")


def test_progress_lines_go_to_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert certify("--out", str(tmp_path), "--group", "CA") == 0
    captured = capsys.readouterr()
    assert "[  1/4] PASS    CA-010 Cancel a NEW order" in captured.err
    assert captured.out.startswith("CERTIFIED (core, read, audit; extensions: events_log, sql): 4 passed")


def test_a_wrong_expectation_fails_the_case_and_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = yaml.safe_load(DEFAULT_CHECKLIST.read_text())
    data["groups"][0]["cases"][0]["steps"][0]["expect"]["version"] = 2  # OE-010: a NEW order is version 1
    checklist = tmp_path / "checklist.yaml"
    checklist.write_text(yaml.safe_dump(data))
    assert certify("--checklist", str(checklist), "--out", str(tmp_path / "out"), "--case", "OE-010", "--quiet") == 1
    results = json.loads((tmp_path / "out" / "run-001" / "results.json").read_text())
    (case,) = results["cases"]
    assert case["status"] == FAIL and "version is 1, expected 2" in case["reason"]
    assert [s["ok"] for s in case["steps"]] == [False, None, None]  # the next steps are "not reached"
    junit = ET.parse(tmp_path / "out" / "run-001" / "junit.xml").getroot()
    assert len(junit.findall(".//failure")) == 1


def test_a_refusal_that_changes_the_order_fails() -> None:
    """The runner reads a refused order back: a gateway that refuses a cancel of a
    MODIFIED order with the right code, but executes the order on the way, is caught."""

    class Leaky(EmbeddedTarget):
        @property
        def gateway(self):  # type: ignore[no-untyped-def]
            engine = super().gateway

            class Gateway:
                def __getattr__(self, name: str) -> object:
                    return getattr(engine, name)

                def cancel(self, order_id: int) -> object:
                    if engine.get(order_id).status is Status.MODIFIED:
                        engine.execute(order_id)
                        raise InvalidTransition("cancel", "MODIFIED", order_id)
                    return engine.cancel(order_id)

            return Gateway()

    target = Leaky()
    try:
        result = Runner(target).run_case(load().case("LC-MODIFIED-CANCEL"))
    finally:
        target.close()
    assert result.status == FAIL
    assert "refused, but the order changed: status MODIFIED -> EXECUTED" in result.reason


def _case(*steps: dict) -> object:  # type: ignore[type-arg]
    create = {"action": "create", "input": {"symbol": "A", "side": "BUY", "quantity": 1, "price": "1"}, "as": "o"}
    raw = {"id": "XX-010", "title": "t", "requirement": "r", "steps": [create, *steps], "evidence": ["orders"],
           "mandatory": True}  # fmt: skip
    return case_from(raw, "PB")


def test_a_case_the_system_cannot_apply_is_not_applicable_never_passed() -> None:
    target = EmbeddedTarget()
    try:
        result = Runner(target).run_case(_case({"action": "http", "method": "GET", "path": "/orders", "expect": {}}))
    finally:
        target.close()
    assert result.status == NOT_APPLICABLE and "HTTP face" in result.reason
    assert [s.ok for s in result.steps] == [None, None]


def test_a_step_marked_if_offered_is_skipped_where_not_offered_and_the_case_still_runs() -> None:
    target = EmbeddedTarget()
    try:
        runner = Runner(target, offers={"read"})
        case = _case({"action": "events", "order": "o", "expect": {"actions": ["create"]}, "if_offered": True})
        result = runner.run_case(case)  # type: ignore[arg-type]
    finally:
        target.close()
    assert result.status == PASS
    assert result.steps[1].ok is None and "does not offer audit" in result.steps[1].actual


@pytest.fixture(scope="module")
def served() -> Iterator[ManagedTarget]:
    """A real `oms serve` process on a free loopback port (reused as a bare URL)."""
    server = ManagedTarget("oms serve --db {db} --port {port}")
    try:
        yield server
    finally:
        server.close()
    assert server.proc is not None and server.proc.poll() is not None


def test_a_bare_url_is_incomplete_restart_and_kill_cases_are_not_run(served: ManagedTarget, tmp_path: Path) -> None:
    assert certify("--target", served.url, "--out", str(tmp_path), "--quiet") == 2
    results = json.loads((tmp_path / "run-001" / "results.json").read_text())
    assert results["verdict"] == "INCOMPLETE"
    not_run = {c["id"] for c in results["cases"] if c["status"] == NOT_RUN}
    # (a FIX case is not applicable to an HTTP system, restart or not)
    assert not_run == {c.id for c in load().cases if set(c.needs) & {"restart", "crash"} and "fix" not in c.needs}
    # behind a bare URL the backend file cannot be read: the sql extension does not apply
    fix_cases = {c.id for c in load().cases if "fix" in c.needs}  # an HTTP system has no FIX face
    assert {c["id"] for c in results["cases"] if c["status"] == NOT_APPLICABLE} == {"PB-070"} | fix_cases
    assert {c["status"] for c in results["cases"]} == {PASS, NOT_RUN, NOT_APPLICABLE}  # the http cases passed
    assert results["offers"] == ["audit", "core", "events_log", "raw_http", "read"]


def test_a_second_run_against_the_same_server_uses_fresh_client_order_ids(
    served: ManagedTarget, tmp_path: Path
) -> None:
    assert certify("--target", served.url, "--out", str(tmp_path), "--group", "IC", "--quiet") == 0
    assert certify("--target", served.url, "--out", str(tmp_path), "--group", "IC", "--quiet") == 0


def test_a_target_that_cannot_start_is_reported_and_incomplete(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert certify("--serve", "{python} -c 'raise SystemExit(3)' {port}", "--out", str(tmp_path)) == 2
    assert "exited with 3 before answering" in capsys.readouterr().err


def test_an_optional_case_that_fails_is_reported_but_never_fails_the_verdict(tmp_path: Path) -> None:
    """Optional cases check what DESIGN.md leaves open: a DESIGN-abiding system stays CERTIFIED."""
    data = yaml.safe_load(DEFAULT_CHECKLIST.read_text())
    sm020 = next(c for g in data["groups"] for c in g["cases"] if c["id"] == "SM-020")
    assert sm020["mandatory"] is False
    sm020["steps"][0]["refuse"]["message_contains"] = ["no system says this"]
    checklist = tmp_path / "checklist.yaml"
    checklist.write_text(yaml.safe_dump(data))
    out = tmp_path / "out"
    assert certify("--checklist", str(checklist), "--out", str(out), "--group", "SM", "--quiet") == 0
    results = json.loads((out / "run-001" / "results.json").read_text())
    assert results["verdict"] == "CERTIFIED"
    assert results["verdict_line"].endswith("-- optional cases failed: SM-020")
    assert {c["id"] for c in results["cases"] if c["status"] == FAIL} == {"SM-020"}
