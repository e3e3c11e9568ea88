"""A real ``python -m oms.fix.serve`` process: a clean stop, a restart and a kill -9 resume
the session (sequence numbers continue, a ResendRequest gets the stored messages), and the
orders entered over FIX are in the database like any others."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fix_support import Msg, RawClient, ServeProcess, new_order, now

import oms
from oms.lifecycle import Status

pytestmark = pytest.mark.slow


def enter(client: RawClient, clordid: str) -> Msg:
    client.send("D", new_order(clordid))
    return client.expect("8")


def test_sigterm_logs_the_session_out_and_exits_zero(tmp_path: Path) -> None:
    server = ServeProcess(tmp_path / "oms.duckdb")
    client = RawClient(server.port)
    try:
        client.logon()
        enter(client, "T1")
        assert server.terminate() == 0
        assert client.expect("5")[58] == "the server is stopping"
    finally:
        client.close()
        server.kill()
    assert "stopped" in "".join(server.lines)
    with oms.open(tmp_path / "oms.duckdb") as engine:
        assert [o.client_order_id for o in engine.orders()] == ["T1"]


def test_a_restart_continues_the_sequence_numbers_and_resends_what_was_sent(tmp_path: Path) -> None:
    db = tmp_path / "oms.duckdb"
    server = ServeProcess(db)
    client = RawClient(server.port)
    try:
        client.logon()  # acceptor 1
        first = enter(client, "R1")  # acceptor 2
        assert server.terminate() == 0
        client.expect("5")  # acceptor 3
    finally:
        client.close()
    server = ServeProcess(db)
    client = RawClient(server.port, seq=client.seq)
    try:
        assert client.logon().seq == 4
        client.send("2", [(7, "1"), (16, "0")])
        gap = client.expect("4", skip=())
        assert (gap.seq, gap[36]) == (1, "2")
        resent = client.expect("8", skip=())
        assert (resent.seq, resent[43], resent[11], resent[17]) == (2, "Y", "R1", first[17])
        gap = client.expect("4", skip=())
        assert (gap.seq, gap[36]) == (3, "5")
    finally:
        client.close()
        server.terminate()


def test_a_kill_9_loses_neither_orders_nor_sequence_numbers(tmp_path: Path) -> None:
    db = tmp_path / "oms.duckdb"
    server = ServeProcess(db)
    client = RawClient(server.port)
    try:
        client.logon()
        acks = [enter(client, f"K{i}") for i in range(3)]
        server.kill()
        assert client.closed_by_peer()
    finally:
        client.close()
    server = ServeProcess(db)
    client = RawClient(server.port, seq=client.seq)
    try:
        assert client.logon().seq == 5  # 1 Logon, 2-4 reports: nothing sent was forgotten
        client.send("F", [(11, "K0-c"), (41, "K0"), (55, "INFY"), (54, "1"), (60, now())])
        report = client.expect("8")
        assert (report[150], report[37], report[41]) == ("4", acks[0][37], "K0")
        client.send("2", [(7, "2"), (16, "4")])
        resent = [client.expect("8", skip=()) for _ in range(3)]
        assert [m[11] for m in resent] == ["K0", "K1", "K2"] and all(m[43] == "Y" for m in resent)
        assert server.terminate() == 0
    finally:
        client.close()
        server.kill()
    with oms.open(db) as engine:
        assert [(o.client_order_id, o.status) for o in engine.orders()] == [
            ("K0", Status.CANCELLED), ("K1", Status.NEW), ("K2", Status.NEW)
        ]  # fmt: skip


def test_a_database_that_cannot_be_opened_is_one_line_and_exit_1(tmp_path: Path) -> None:
    bad = tmp_path / "not.duckdb"
    bad.write_text("this is not a database")
    argv = [sys.executable, "-m", "oms.fix.serve", "--db", str(bad), "--fix-port", "0", "--target", "CLIENT"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert out.stderr.count("\n") == 1 and str(bad) in out.stderr and "Traceback" not in out.stderr
