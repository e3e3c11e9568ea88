"""The pack certifies FIX 4.4 systems (issue #12): our own `oms serve --fix-port` over FIX with
its HTTP face (every case, FX included), and the FIX face alone (what FIX cannot ask is NOT
APPLICABLE, with the reason). Real servers on 127.0.0.1, real sockets."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from oms.certification.checklist import load
from oms.certification.cli import certify, invocation_for
from oms.certification.targets import free_port

SERVE_FIX = "oms serve --db {db} --port {port} --fix-port {fix_port}"


def _cases(run: Path) -> dict[str, dict]:
    results = json.loads((run / "results.json").read_text())
    return {c["id"]: c for c in results["cases"]}


def test_our_fix_face_with_its_http_face_is_certified_by_every_case(tmp_path: Path) -> None:
    checklist = load()
    result, run = certify(invocation_for(serve=SERVE_FIX), checklist, list(checklist.cases), out=tmp_path)
    failed = {r.case.id: r.reason for r in result.results if r.status == "FAIL"}
    assert failed == {}
    assert result.verdict == "CERTIFIED", result.verdict_line
    assert "face: fix" in result.verdict_line
    cases = _cases(run)
    fx = [c for c in cases if c.startswith("FX-")]
    assert len(fx) == 23 and all(cases[c]["status"] == "PASS" for c in fx)
    # every order case ran over FIX: the only one that cannot is a replace that changes nothing
    not_applicable = {c for c, v in cases.items() if v["status"] == "NOT APPLICABLE"}
    assert not_applicable == {"MO-040"}
    assert "OrderCancelReplaceRequest always carries 38" in cases["MO-040"]["reason"]
    session = cases["FX-050"]["evidence"]
    assert any("35=2" in " ".join(row) for e in session for row in e["rows"])  # the ResendRequest is shown


@pytest.fixture
def fix_only(tmp_path: Path):
    port, fix_port = free_port(), free_port()
    oms_cli = str(Path(sys.executable).parent / "oms")
    argv = [oms_cli, "serve", "--db", str(tmp_path / "oms.duckdb"), "--port", str(port), "--fix-port", str(fix_port)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", fix_port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail("oms serve --fix-port did not take a FIX connection")
            time.sleep(0.05)
    try:
        yield f"fix://127.0.0.1:{fix_port}?sender=CLIENT&target=OMS"
    finally:
        proc.terminate()
        proc.wait(10)


def test_the_fix_face_alone_certifies_what_fix_can_ask_and_says_why_not_the_rest(fix_only: str, tmp_path: Path) -> None:
    checklist = load()
    result, run = certify(invocation_for(target=fix_only), checklist, list(checklist.cases), out=tmp_path)
    assert result.count("FAIL") == 0, [(r.case.id, r.reason) for r in result.results if r.status == "FAIL"]
    assert result.verdict_line.startswith("INCOMPLETE (core without execute and listing, read; extensions: none")
    cases = _cases(run)
    assert cases["OE-010"]["status"] == "NOT APPLICABLE"  # it lists the book
    assert "FIX has no message to list the book" in cases["OE-010"]["reason"]
    assert cases["EX-010"]["status"] == "NOT APPLICABLE"
    assert "FIX has no message to execute" in cases["EX-010"]["reason"]
    # what FIX can ask passes: entry with its refusals, the lifecycle over FIX, the session
    ran = {c for c, v in cases.items() if v["status"] == "PASS"}
    assert {"FX-010", "FX-030", "FX-050", "FX-060", "FX-090", "FX-100", "FX-110"} <= ran
    assert any(c.startswith("LC-") for c in ran) and any(c.startswith("FB-") for c in ran)
    # no HTTP face: the checks that need one are not applicable, and a bare URL cannot be restarted
    assert cases["FX-140"]["status"] == "NOT APPLICABLE"
    assert cases["FX-120"]["status"] == "NOT RUN"


def test_a_quickfix_based_acceptor_written_apart_is_certified_over_fix(tmp_path: Path) -> None:
    """tests/faulty_oms/quickfix_acceptor.py: QuickFIX's C++ engine (quickfix-ssl) with a book
    of its own, written from DESIGN.md alone, FIX only. What FIX can ask passes, the session
    cases included (restart and kill -9 resume on QuickFIX's FileStore); the rest is NOT
    APPLICABLE with the reason."""
    acceptor = Path(__file__).parent / "faulty_oms" / "quickfix_acceptor.py"
    serve = f"{{python}} {acceptor} --port {{fix_port}} --db {{db}}"
    checklist = load()
    result, run = certify(invocation_for(serve=serve), checklist, list(checklist.cases), out=tmp_path)
    assert result.count("FAIL") == 0, [(r.case.id, r.reason) for r in result.results if r.status == "FAIL"]
    assert result.verdict_line.startswith("CERTIFIED (core without execute and listing, read; extensions: none")
    cases = _cases(run)
    passed = {c for c, v in cases.items() if v["status"] == "PASS"}
    assert {c for c in cases if c.startswith("FX-")} - passed == {"FX-140", "FX-150", "FX-160", "FX-220", "FX-230"}
    assert {"FX-120", "FX-130"} <= passed  # the session resumes after a restart and after kill -9
    assert len(passed) >= 40
