"""The command line: thin, documented, one line per refusal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from oms.cli import build_parser, main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for name in commands:
        with pytest.raises(SystemExit) as exit_:
            main([name, "--help"])
        assert exit_.value.code == 0
        assert capsys.readouterr().out.startswith(f"usage: oms {name}")


def test_create_cancel_and_list_through_the_cli(capsys: pytest.CaptureFixture[str], db_path: Path) -> None:
    db = str(db_path)
    assert run(capsys, "create", "INFY", "BUY", "100", "1500.25", "--db", db)[0] == 0
    assert run(capsys, "cancel", "1", "--db", db)[0] == 0
    code, out, _ = run(capsys, "orders", "--db", db, "--json")
    assert code == 0
    (order,) = json.loads(out)
    assert (order["order_id"], order["status"], order["price"]) == (1, "CANCELLED", 1500.25)
    assert '"price": 1500.25' in out  # an exact JSON number, not a string


def test_tables_show_timestamps_as_the_api_writes_them_and_blanks_for_missing_values(
    capsys: pytest.CaptureFixture[str], db_path: Path
) -> None:
    db = str(db_path)
    run(capsys, "create", "INFY", "BUY", "100", "1500.25", "--db", db)
    run(capsys, "modify", "1", "--quantity", "0", "--db", db)  # refused, logged
    order = json.loads(run(capsys, "orders", "--db", db, "--json")[1])[0]
    code, out, _ = run(capsys, "orders", "--db", db)
    header, row = out.splitlines()
    assert code == 0 and header.split()[0] == "order_id"
    assert order["created_at"] in row and order["created_at"].endswith("Z")
    assert "<NA>" not in row and "NaT" not in row and "+00:00" not in row
    code, out, _ = run(capsys, "events", "1", "--db", db)
    assert code == 0 and len(out.splitlines()) == 3
    assert "<NA>" not in out and "VALIDATION_ERROR" in out


def test_a_refusal_prints_code_and_message_and_exits_1(capsys: pytest.CaptureFixture[str], db_path: Path) -> None:
    db = str(db_path)
    run(capsys, "create", "INFY", "BUY", "100", "1500.25", "--db", db)
    run(capsys, "execute", "1", "--db", db)
    code, out, err = run(capsys, "cancel", "1", "--db", db)
    assert (code, out, err) == (1, "", "INVALID_TRANSITION: cannot cancel order 1: status is EXECUTED\n")
    code, _, err = run(capsys, "create", "IN FY", "HOLD", "0", "--db", db)
    assert code == 1 and err.startswith("VALIDATION_ERROR: symbol:")


def test_events_show_refused_commands(capsys: pytest.CaptureFixture[str], db_path: Path) -> None:
    db = str(db_path)
    run(capsys, "create", "INFY", "BUY", "100", "1500.25", "--db", db)
    run(capsys, "modify", "1", "--quantity", "0", "--db", db)
    code, out, _ = run(capsys, "events", "1", "--db", db, "--json")
    events = json.loads(out)
    assert code == 0 and [(e["action"], e["accepted"], e["reason"]) for e in events] == [
        ("create", True, None),
        ("modify", False, "VALIDATION_ERROR"),
    ]


def test_lifecycle_prints_the_table_and_the_diagram(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "lifecycle")[1].startswith("| from \\ action | modify | cancel | execute |")
    assert run(capsys, "lifecycle", "--format", "mermaid")[1].startswith("stateDiagram-v2")


def test_listing_a_missing_database_says_so_and_creates_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "typo" / "oms.duckdb"
    code, _, err = run(capsys, "orders", "--db", str(missing))
    assert code == 1 and err.startswith(f"STORE_ERROR: {missing}: no such database")
    assert not (tmp_path / "typo").exists()
