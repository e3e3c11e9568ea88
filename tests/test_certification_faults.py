"""A certification that cannot fail proves nothing: the pack, started through
``oms certify --serve``, fails deliberately faulty OMS servers (real processes, see
tests/faulty_oms/serve.py) on exactly the cases that show their fault -- and certifies
our own ``oms serve``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from oms.certification import load
from oms.certification.cli import main as certify_main
from oms.cli import build_parser

FAULTY = "{python} " + str(Path(__file__).parent / "faulty_oms" / "serve.py") + " %s --db {db} --port {port}"
GROUPS_WITHOUT_RESTARTS = ("OE", "MO", "CA", "EX", "SM", "IC", "RP")


def certify(*argv: str) -> int:
    return certify_main(build_parser().parse_args(["certify", "--quiet", *argv]))


def results(out: Path) -> dict[str, Any]:
    (run,) = sorted(out.glob("run-*"))
    return json.loads((run / "results.json").read_text())  # type: ignore[no-any-return]


def by_status(data: dict[str, Any], status: str) -> set[str]:
    return {c["id"] for c in data["cases"] if c["status"] == status}


def test_our_server_is_certified_through_serve_restarts_and_kill_9_included(tmp_path: Path) -> None:
    assert certify("--serve", "oms serve --db {db} --port {port}", "--out", str(tmp_path)) == 0
    data = results(tmp_path)
    assert by_status(data, "PASS") == {c.id for c in load().cases}  # the HTTP-only cases ran too
    assert "Started server process" in next(tmp_path.glob("run-*/server.log")).read_text()


# Cases that catch a fault only when a race goes one way: cancel racing execute (IC-080)
# shows an idempotent cancel only in the runs where a cancel wins -- then the other three
# cancels are 'accepted' too.
RACE_DEPENDENT = {"idempotent-cancel": {"IC-080": "4 accepted, expected 1"}}


@pytest.mark.parametrize(
    ("fault", "failing"),
    [
        # an extra row in the table: the generated matrix catches it, and the log no longer replays
        ("cancel-modified", {"LC-MODIFIED-CANCEL", "PB-060"}),
        # a repeated cancel answered with success: the generated matrix and both cancel races catch it
        ("idempotent-cancel", {"LC-CANCELLED-CANCEL", "IC-020", "IC-050", "IC-110"}),
        # int()/Decimal() on raw input: 500s (and a silently truncated quantity 1.5)
        ("500-on-bad-input", {"OE-120", "OE-130", "SM-070", "SM-080"}),
    ],
)
def test_the_pack_fails_a_faulty_server_on_exactly_the_cases_that_show_the_fault(
    fault: str, failing: set[str], tmp_path: Path
) -> None:
    selection = [arg for g in GROUPS_WITHOUT_RESTARTS for arg in ("--group", g)] + ["--case", "PB-060"]
    assert certify("--serve", FAULTY % fault, "--out", str(tmp_path), *selection) == 1
    data = results(tmp_path)
    assert data["verdict"] == "FAILED"
    failed = by_status(data, "FAIL")
    for case_id, why in RACE_DEPENDENT.get(fault, {}).items():
        if case_id in failed:  # caught this run too, for exactly the fault's reason
            assert why in next(c["reason"] for c in data["cases"] if c["id"] == case_id)
            failed.discard(case_id)
    assert failed == failing
    assert by_status(data, "NOT RUN") == set()


def test_the_pack_fails_a_server_that_forgets_orders_on_restart(tmp_path: Path) -> None:
    assert certify("--serve", FAULTY % "forgets-on-restart", "--out", str(tmp_path), "--group", "PB") == 1
    data = results(tmp_path)
    assert by_status(data, "FAIL") == {"PB-010", "PB-020", "PB-030", "PB-040", "PB-050", "PB-080", "PB-090"}
    assert by_status(data, "NOT RUN") == {"PB-070"}  # it wrote no database file to read
    reasons = {c["id"]: c["reason"] for c in data["cases"]}
    assert "ORDER_NOT_FOUND" in reasons["PB-010"]
    assert "acknowledged orders lost" in reasons["PB-090"]
