"""The FIX 4.4 face of the independent minimal OMS (tests/faulty_oms/minimal_fix.py).

Each test starts ``minimal_oms.py --fix-port 0`` as a real process on 127.0.0.1 with a
fresh sqlite file and talks to it over a raw socket with ``simplefix`` (its own framing,
not the server's codec). Clean, it follows DESIGN.md's FIX section and FIX 4.4's session
rules; each ``--fault fix-...`` visibly changes the one behaviour its rule names, and an
engine fault (cancel-modified) shows through the FIX face as well. Waits are bounded;
nothing asserts on timing.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
import simplefix

MINIMAL = Path(__file__).parent / "faulty_oms" / "minimal_oms.py"
READY_FIX = re.compile(r"FIX listening on 127\.0\.0\.1:(\d+)")
READY_HTTP = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")
WAIT = 5.0  # seconds, the bound of every wait for a message


def now() -> str:
    t = datetime.now(UTC)
    return t.strftime("%Y%m%d-%H:%M:%S.") + f"{t.microsecond // 1000:03d}"


class Server:
    def __init__(self, db: Path, faults: tuple[str, ...] = ()) -> None:
        self.db = db
        args = [sys.executable, str(MINIMAL), "--db", str(db), "--port", "0", "--fix-port", "0"]
        for f in faults:
            args += ["--fault", f]
        self.log = db.with_suffix(".log")
        with self.log.open("w") as err:
            self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # the FIX line comes on stdout (and stderr)
        m = READY_FIX.search(line)
        assert m, line + self.log.read_text()
        self.fix_port = int(m.group(1))
        deadline = time.monotonic() + WAIT
        while not (h := READY_HTTP.search(self.log.read_text())) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert h, self.log.read_text()
        self.http_port = int(h.group(1))

    def http(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"http://127.0.0.1:{self.http_port}{path}", data=data, method=method)
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=WAIT) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(WAIT)
        assert self.proc.stdout is not None
        self.proc.stdout.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(WAIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(WAIT)
        if self.proc.stdout is not None and not self.proc.stdout.closed:
            self.proc.stdout.close()


Msg = dict[int, str]


class Client:
    """A tiny FIX 4.4 initiator: CLIENT -> OMS, its own sequence numbers."""

    def __init__(self, port: int, seq: int = 1) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        self.parser = simplefix.FixParser()
        self.seq = seq
        self.ids = 0

    def close(self) -> None:
        self.sock.close()

    def encode(self, msg_type: str, fields: list[tuple[int, object]], seq: int | None = None, **header) -> bytes:
        m = simplefix.FixMessage()
        m.append_pair(8, "FIX.4.4", header=True)
        m.append_pair(35, msg_type, header=True)
        m.append_pair(49, header.get("sender", "CLIENT"), header=True)
        m.append_pair(56, header.get("target", "OMS"), header=True)
        m.append_pair(34, self.seq if seq is None else seq, header=True)
        m.append_pair(52, now(), header=True)
        for tag, value in header.get("extra_header", []):
            m.append_pair(tag, value, header=True)
        for tag, value in fields:
            m.append_pair(tag, value)
        if seq is None:
            self.seq += 1
        return m.encode()

    def send(self, msg_type: str, fields: list[tuple[int, object]] = (), seq: int | None = None, **header) -> None:
        self.sock.sendall(self.encode(msg_type, list(fields), seq, **header))

    def recv(self, timeout: float = WAIT) -> Msg | None:
        """The next message (None when nothing came within timeout or the peer closed)."""
        deadline = time.monotonic() + timeout
        while True:
            m = self.parser.get_message()
            if m is not None:
                return {tag: value.decode() for tag, value in reversed(list(m))} | {0: m.get(35).decode()}
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                return None
            except OSError:
                return None
            if not data:
                return None
            self.parser.append_buffer(data)

    def expect(self, msg_type: str, timeout: float = WAIT, skip: str = "0") -> Msg:
        """The next message of msg_type, skipping heartbeats (and nothing else)."""
        deadline = time.monotonic() + timeout
        while (m := self.recv(max(0.01, deadline - time.monotonic()))) is not None:
            if m[35] == msg_type:
                return m
            assert m[35] in skip, f"expected 35={msg_type}, got {m}"
        raise AssertionError(f"no 35={msg_type} within {timeout}s")

    def expect_any(self, timeout: float = WAIT) -> Msg:
        """The next message but heartbeats without 112."""
        deadline = time.monotonic() + timeout
        while (m := self.recv(max(0.01, deadline - time.monotonic()))) is not None:
            if m[35] != "0" or 112 in m:
                return m
        raise AssertionError(f"nothing within {timeout}s")

    def quiet(self, timeout: float = 0.5) -> list[Msg]:
        """Everything (but heartbeats) that arrives within timeout."""
        out = []
        deadline = time.monotonic() + timeout
        while (m := self.recv(max(0.01, deadline - time.monotonic()))) is not None:
            if m[35] != "0":
                out.append(m)
        return out

    def logon(self, hb: int = 30, reset: bool = False) -> Msg:
        fields: list[tuple[int, object]] = [(98, 0), (108, hb)]
        if reset:
            fields.append((141, "Y"))
        self.send("A", fields)
        return self.expect("A")

    def order(self, clordid: str | None = None, qty: object = 100, price: object = "10.5", **over) -> None:
        self.ids += 1
        fields = {11: clordid or f"C{self.ids}", 55: "INFY", 54: "1", 38: qty, 40: "2", 44: price, 60: now()}
        fields.update({int(k[1:]): v for k, v in over.items()})
        self.send("D", [(t, v) for t, v in fields.items() if v is not None])


@contextmanager
def running(tmp_path: Path, *faults: str, db: str = "oms.sqlite") -> Iterator[Server]:
    server = Server(tmp_path / db, faults)
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def session(server: Server, hb: int = 30, seq: int = 1, reset: bool = False) -> Iterator[Client]:
    client = Client(server.fix_port, seq)
    try:
        client.logon(hb, reset)
        yield client
    finally:
        client.close()


@pytest.fixture
def clean(tmp_path: Path) -> Iterator[Server]:
    with running(tmp_path) as server:
        yield server


def new_order(c: Client, clordid: str, **kw) -> Msg:
    c.order(clordid, **kw)
    return c.expect("8")


# --------------------------------------------------------------------------------------
# Clean: application layer
# --------------------------------------------------------------------------------------


def test_new_order_is_acknowledged_and_is_the_same_order_over_http(clean: Server) -> None:
    with session(clean) as c:
        ack = new_order(c, "  A-1 ")
        assert (ack[150], ack[39], ack[11], ack[37]) == ("0", "0", "  A-1 ", "1")
        assert (ack[14], ack[151], ack[6]) == ("0", "100", "0")
        status, order = clean.http("GET", "/order/1")
        assert status == 200 and order["client_order_id"] == "  A-1 " and order["status"] == "NEW"
        status, events = clean.http("GET", "/order/1/events")
        assert [e["action"] for e in events] == ["create"]


def test_refused_creates_carry_their_ordrejreason(clean: Server) -> None:
    with session(clean) as c:
        new_order(c, "DUP")
        dup = new_order(c, "DUP")
        assert (dup[150], dup[39], dup[103], dup[37]) == ("8", "8", "6", "NONE")
        assert "DUP" in dup[58]
        zero = new_order(c, "Q0", qty=0)
        assert (zero[150], zero[103]) == ("8", "13")
        huge = new_order(c, "Q1", qty=10**9 + 1)
        assert huge[103] == "13"
        places = new_order(c, "P5", price="1.00001")
        assert (places[150], places[103]) == ("8", "99")
        nolimit = new_order(c, "NP", price=None)  # LIMIT requires a price: the engine's rule
        assert (nolimit[150], nolimit[103]) == ("8", "99")
    # the refused creates changed nothing: order 1 has only its create
    status, events = clean.http("GET", "/order/1/events")
    assert status == 200 and [e["accepted"] for e in events] == [True]


def test_replace_cancel_and_their_rejects(clean: Server) -> None:
    with session(clean) as c:
        new_order(c, "A")
        c.send("G", [(41, "A"), (11, "B"), (55, "INFY"), (54, "1"), (38, 200), (40, "2"), (44, "11"), (60, now())])
        mod = c.expect("8")
        assert (mod[150], mod[39], mod[11], mod[41], mod[38], mod[44]) == ("5", "0", "B", "A", "200", "11")
        assert mod[151] == "200"
        # MODIFIED x cancel is refused: too late, 39 = the current status (New on this face)
        c.send("F", [(41, "B"), (11, "C"), (55, "INFY"), (54, "1"), (60, now())])
        rej = c.expect("9")
        assert (rej[434], rej[102], rej[39], rej[37]) == ("1", "0", "0", "1")
        # the old ClOrdID no longer names the order
        c.send("F", [(41, "A"), (11, "D"), (55, "INFY"), (54, "1"), (60, now())])
        unknown = c.expect("9")
        assert (unknown[102], unknown[37], unknown[39]) == ("1", "NONE", "8")
        new_order(c, "E")
        c.send("F", [(37, "2"), (11, "F"), (55, "INFY"), (54, "1"), (60, now())])
        cxl = c.expect("8")
        assert (cxl[150], cxl[39], cxl[37], cxl[41], cxl[151]) == ("4", "4", "2", "E", "0")
        c.send("G", [(37, "2"), (11, "G"), (38, 5), (60, now())])
        late = c.expect("9")
        assert (late[434], late[102], late[39]) == ("2", "0", "4")
        c.send("H", [(37, "1"), (11, "B"), (790, "S1")])
        st = c.expect("8")
        assert (st[150], st[39], st[37], st[790]) == ("I", "0", "1", "S1")


def test_execute_cancel_modify_over_http_reach_the_session_that_entered_the_order(clean: Server) -> None:
    with session(clean) as c:
        new_order(c, "X1")
        new_order(c, "X2")
        new_order(c, "X3")
        assert clean.http("POST", "/order/1/execute", {"price": "10.25"})[0] == 200
        fill = c.expect("8")
        assert (fill[150], fill[39], fill[37], fill[11]) == ("F", "2", "1", "X1")
        assert (fill[31], fill[32], fill[14], fill[151], fill[6]) == ("10.25", "100", "100", "0", "10.25")
        assert clean.http("DELETE", "/order/2")[0] == 200
        cxl = c.expect("8")
        assert (cxl[150], cxl[39], cxl[37]) == ("4", "4", "2")
        assert clean.http("PUT", "/order/3", {"price": "9"})[0] == 200
        mod = c.expect("8")
        assert (mod[150], mod[39], mod[44]) == ("5", "0", "9")
        exec_ids = {fill[17], cxl[17], mod[17]}
        assert len(exec_ids) == 3
    # an order entered over HTTP reports to nobody
    assert clean.http("POST", "/order", {"symbol": "A", "side": "BUY", "quantity": 1, "price": 1})[0] == 201


def test_malformed_messages_get_a_reject_and_the_session_stays_up(clean: Server) -> None:
    with session(clean) as c:
        c.send("D", [(11, "M1"), (54, "1"), (38, 1), (40, "2"), (44, 1), (60, now())])  # no 55
        rej = c.expect("3")
        assert (rej[373], rej[371], rej[372]) == ("1", "55", "D")
        c.send("D", [(11, "M2"), (55, "X"), (54, "7"), (38, 1), (40, "2"), (44, 1), (60, now())])
        assert c.expect("3")[373] == "5"
        c.send("D", [(11, "M3"), (55, "X"), (54, "1"), (38, "abc"), (40, "2"), (44, 1), (60, now())])
        assert c.expect("3")[373] == "6"
        c.send("ZZ", [(58, "what")])
        bmr = c.expect("j")
        assert (bmr[372], bmr[380], bmr[45]) == ("ZZ", "3", str(c.seq - 1))
        c.send("1", [(112, "still-up")])
        assert c.expect("0")[112] == "still-up"


# --------------------------------------------------------------------------------------
# Clean: session layer
# --------------------------------------------------------------------------------------


def test_test_request_heartbeat_and_idle_timers(clean: Server) -> None:
    with session(clean, hb=1) as c:
        c.send("1", [(112, "ping")])
        assert c.expect("0")[112] == "ping"
        # silent: the server sends heartbeats, then a TestRequest
        m = c.expect("1", timeout=WAIT)
        c.send("0", [(112, m[112])])
        c.send("1", [(112, "after")])
        while (hb := c.expect("0", skip="1")).get(112) != "after":
            pass  # idle heartbeats have no 112; ours answers with it
        assert hb[112] == "after"


def test_too_high_seq_asks_for_a_resend_and_gap_fill_catches_up(clean: Server) -> None:
    with session(clean) as c:
        c.send("1", [(112, "hi")], seq=5)
        rr = c.expect("2")
        assert (rr[7], rr[16]) == ("2", "0")
        c.send("4", [(123, "Y"), (36, 6)], seq=2, extra_header=[(43, "Y"), (122, now())])
        c.seq = 6
        c.send("1", [(112, "caught-up")])
        assert c.expect("0")[112] == "caught-up"


def test_too_low_seq_without_possdup_is_a_logout_and_with_possdup_is_ignored(clean: Server) -> None:
    with session(clean) as c:
        c.send("1", [(112, "a")])
        c.expect("0")
        c.send("1", [(112, "dup")], seq=2, extra_header=[(43, "Y"), (122, now())])
        c.send("1", [(112, "b")])
        assert c.expect("0")[112] == "b"  # the duplicate was ignored
        c.send("1", [(112, "low")], seq=1)
        out = c.expect("5")
        assert "too low" in out[58]
        assert c.recv(2.0) is None  # disconnected


def test_resend_request_resends_reports_with_possdup_and_gap_fills_admin(clean: Server) -> None:
    with session(clean) as c:
        ack = new_order(c, "R1")  # server seq 2 (1 was the Logon)
        c.send("1", [(112, "t")])
        c.expect("0")  # server seq 3
        c.send("2", [(7, 1), (16, 0)])
        gap1 = c.expect("4")
        assert (gap1[34], gap1[123], gap1[36], gap1[43]) == ("1", "Y", "2", "Y")
        again = c.expect("8")
        assert (again[34], again[43], again[17], again[122]) == ("2", "Y", ack[17], ack[52])
        gap2 = c.expect("4")
        assert (gap2[34], gap2[36]) == ("3", "4")


def test_sequence_reset_reset_mode_and_reset_seq_num_flag(clean: Server) -> None:
    with session(clean) as c:
        c.send("4", [(36, 10)], seq=99)  # reset mode: MsgSeqNum not checked
        c.seq = 10
        c.send("1", [(112, "ten")])
        assert c.expect("0")[112] == "ten"
        c.send("4", [(36, 3)], seq=11)
        assert c.expect("3")[373] == "5"  # may not lower it
    c = Client(clean.fix_port, seq=1)
    try:
        logon = c.logon(reset=True)
        assert (logon[34], logon[141]) == ("1", "Y")
    finally:
        c.close()


def test_garbled_and_wrong_compid(clean: Server) -> None:
    with session(clean) as c:
        raw = bytearray(c.encode("1", [(112, "garbled")]))
        raw[-2] = ord("0") if raw[-2] != ord("0") else ord("1")  # wrong checksum
        c.sock.sendall(bytes(raw))
        c.seq -= 1
        c.send("1", [(112, "clean")])
        assert c.expect("0")[112] == "clean"  # the garbled one was ignored, seq not consumed
        wrong_length = re.sub(rb"\x019=(\d+)\x01", b"\x019=7\x01", c.encode("1", [(112, "short")]))
        c.seq -= 1
        c.sock.sendall(wrong_length + c.encode("1", [(112, "after-short")]))
        assert c.expect("0")[112] == "after-short"  # a wrong BodyLength: ignored, re-synced
        c.send("1", [(112, "x")], sender="SOMEONE")
        assert c.expect("3")[373] == "9"
        assert c.expect("5")
    bad = Client(clean.fix_port)
    try:
        bad.send("A", [(98, 0), (108, 30)], sender="INTRUDER")
        assert bad.recv(2.0) is None  # a refused Logon simply disconnects
    finally:
        bad.close()


def test_reports_for_a_logged_out_session_reach_it_after_logon(clean: Server) -> None:
    with session(clean) as c:
        new_order(c, "O1")
        seq = c.seq
        c.send("5", [])
        c.expect("5")
    assert clean.http("POST", "/order/1/execute", {})[0] == 200
    with session(clean, seq=seq + 1) as c:
        fill = c.expect("8")
        assert (fill[150], fill[11]) == ("F", "O1")


def test_kill_9_and_restart_resumes_the_sequence_numbers(tmp_path: Path) -> None:
    def run(*faults: str) -> tuple[Msg, Msg]:
        """kill -9 after one order; restart; log on again with the client's next MsgSeqNum:
        the server's Logon and its answer to a TestRequest."""
        db = f"k{len(faults)}.sqlite"
        with running(tmp_path, *faults, db=db) as server, session(server) as c:
            new_order(c, "K1")
            server.kill()
        with running(tmp_path, *faults, db=db) as server:
            again = Client(server.fix_port, c.seq)
            try:
                logon = again.logon()
                again.send("1", [(112, "after")])
                return logon, again.expect("0", skip="") if not faults else again.expect("2")
            finally:
                again.close()

    logon, answer = run()
    assert logon[34] == "3" and answer[112] == "after"  # Logon 1, ack 2, then 3; 3 in expected
    logon, resend = run("fix-seq-reset-on-restart")
    assert logon[34] == "1" and resend[7] == "1"  # forgot both: starts at 1, asks for 1.. again


def test_sent_messages_are_resent_after_a_restart(tmp_path: Path) -> None:
    def run(*faults: str) -> Msg:
        """One order (its ack is server seq 2); restart; log on again: the answer to a
        ResendRequest for 2..2."""
        db = f"s{len(faults)}.sqlite"
        with running(tmp_path, *faults, db=db) as server, session(server) as c:
            new_order(c, "S1")
        with running(tmp_path, *faults, db=db) as server:
            again = Client(server.fix_port, c.seq)
            try:
                again.logon()
                again.send("2", [(7, 2), (16, 2)])
                return again.expect_any()
            finally:
                again.close()

    resent = run()
    assert (resent[35], resent[34], resent[43], resent[11]) == ("8", "2", "Y", "S1")
    gap = run("fix-sent-not-persisted")
    assert (gap[35], gap[34], gap[36]) == ("4", "2", "3")  # forgotten: a gap fill over the ack


# --------------------------------------------------------------------------------------
# Faults: each changes the one behaviour its rule names
# --------------------------------------------------------------------------------------


# Each scenario runs on a clean server and on one with the fault, in a fresh session
# (141=Y), and returns what it observed: the fault must change exactly that.


def garbled(c: Client, fields: list[tuple[int, object]]) -> bytes:
    raw = bytearray(c.encode("1", fields))
    raw[-2] = ord("0") if raw[-2] != ord("0") else ord("1")  # a wrong CheckSum
    return bytes(raw)


def fill_of(c: Client, server: Server) -> Msg | None:
    ack = new_order(c, f"F{time.monotonic_ns()}")
    assert server.http("POST", f"/order/{ack[37]}/execute", {})[0] == 200
    reports = [m for m in c.quiet(1.0) if m[35] == "8"]
    return reports[0] if reports else None


def sees_fill(c: Client, server: Server) -> object:
    return fill_of(c, server) is not None


def fill_lastpx(c: Client, server: Server) -> object:
    fill = fill_of(c, server)
    assert fill is not None
    return (31 in fill, 32 in fill)


def fill_quantities(c: Client, server: Server) -> object:
    fill = fill_of(c, server)
    assert fill is not None
    return (fill[14], fill[151])


def modified_status(c: Client, server: Server) -> object:
    a = f"A{time.monotonic_ns()}"
    new_order(c, a)
    c.send("G", [(41, a), (11, a + "-2"), (38, 50), (60, now())])
    return c.expect("8")[39]


def execid_shared(c: Client, server: Server) -> object:
    a = f"A{time.monotonic_ns()}"
    ack = new_order(c, a)
    c.send("F", [(41, a), (11, a + "-2"), (60, now())])
    return c.expect("8")[17] == ack[17]


def duplicate_reason(c: Client, server: Server) -> object:
    a = f"A{time.monotonic_ns()}"
    new_order(c, a)
    return new_order(c, a).get(103)


def cxlrej_status(c: Client, server: Server) -> object:
    a = f"A{time.monotonic_ns()}"
    ack = new_order(c, a)
    assert server.http("POST", f"/order/{ack[37]}/execute", {})[0] == 200
    c.expect("8")
    c.send("F", [(41, a), (11, a + "-2"), (60, now())])
    return c.expect("9")[39]  # the order is EXECUTED: 2


def unknown_order_id(c: Client, server: Server) -> object:
    c.send("F", [(41, "NOPE"), (11, f"B{time.monotonic_ns()}"), (60, now())])
    return c.expect("9")[37]


def answers_before_next(c: Client, tag: str, *sends: bytes) -> list[str]:
    """The MsgTypes that arrive before the answer to a TestRequest sent after sends."""
    for raw in sends:
        c.sock.sendall(raw)
    c.send("1", [(112, tag)])
    seen = []
    while (m := c.expect_any()) is not None and m.get(112) != tag:
        seen.append(m[35])
    return seen


def malformed_answers(c: Client, server: Server) -> object:
    no_symbol = c.encode("D", [(11, "M1"), (54, "1"), (38, 1), (40, "2"), (44, 1), (60, now())])
    return answers_before_next(c, "next", no_symbol, c.encode("ZZ", []))


def resent_possdup(c: Client, server: Server) -> object:
    new_order(c, f"A{time.monotonic_ns()}")
    c.send("2", [(7, 2), (16, 2)])
    again = c.expect("8")
    assert again[34] == "2"
    return again.get(43)


def resent_first(c: Client, server: Server) -> object:
    c.send("2", [(7, 1), (16, 1)])
    return c.expect_any()[35]  # the Logon: gap-filled (4), not resent (A)


def low_seq_answer(c: Client, server: Server) -> object:
    c.send("1", [(112, "a")])
    c.expect("0")
    c.send("1", [(112, "low")], seq=1)
    return c.expect_any()[35]


def garbled_answers(c: Client, server: Server) -> object:
    bad = garbled(c, [(112, "garbled")])
    c.seq -= 1  # the garbled one did not count: the next message reuses its MsgSeqNum
    return answers_before_next(c, "clean", bad)


def offline_reports(c: Client, server: Server) -> object:
    ack = new_order(c, f"O{time.monotonic_ns()}")
    seq = c.seq
    c.send("5", [])
    c.expect("5")
    c.close()
    assert server.http("POST", f"/order/{ack[37]}/execute", {})[0] == 200
    with session(server, seq=seq + 1) as again:
        return len([m for m in again.quiet(1.0) if m[35] == "8"])


def clordid_echo(c: Client, server: Server) -> object:
    a = f" PAD{time.monotonic_ns()} "
    ack = new_order(c, a)
    stored = server.http("GET", f"/order/{ack[37]}")[1]["client_order_id"]
    return (ack[11] == a, stored == a)


def unique(prefix: str) -> str:
    return f"{prefix}{time.monotonic_ns()}"


def cxlrej_orig(c: Client, server: Server) -> object:
    c.send("F", [(41, "NOPE"), (11, unique("B")), (60, now())])
    return c.expect("9").get(41)


def replace_orig(c: Client, server: Server) -> object:
    a = unique("A")
    new_order(c, a)
    c.send("G", [(41, a), (11, a + "-2"), (38, 50), (60, now())])
    return {a: "replaced", a + "-2": "new"}.get(c.expect("8").get(41))


def status_of_cancelled(c: Client, server: Server) -> object:
    ack = new_order(c, unique("A"))
    assert server.http("DELETE", f"/order/{ack[37]}")[0] == 200
    c.expect("8")
    c.send("H", [(37, ack[37]), (11, ack[11])])
    return c.expect("8")[39]


def unsolicited_modify_price(c: Client, server: Server) -> object:
    ack = new_order(c, unique("A"), price="10.5")
    assert server.http("PUT", f"/order/{ack[37]}", {"price": "9"})[0] == 200
    return c.expect("8")[44]


def too_many_places_reason(c: Client, server: Server) -> object:
    return new_order(c, unique("P"), price="1.00001")[103]


def gap_fill_new_seq(c: Client, server: Server) -> object:
    c.send("2", [(7, 1), (16, 0)])  # only the Logon (1) was sent: a gap fill to 2
    return c.expect("4")[36]


def resent_status(c: Client, server: Server) -> object:
    ack = new_order(c, unique("A"))  # server seq 2, 39=0
    assert server.http("DELETE", f"/order/{ack[37]}")[0] == 200
    c.expect("8")
    c.send("2", [(7, 2), (16, 2)])
    again = c.expect("8")
    assert (again[34], again[43]) == ("2", "Y")
    return again[39]  # as first sent: 0 (New), not the order's status now (4)


def http_order_reports(c: Client, server: Server) -> object:
    status, order = server.http("POST", "/order", {"symbol": "A", "side": "BUY", "quantity": 1, "price": 1})
    assert status == 201
    assert server.http("POST", f"/order/{order['order_id']}/execute", {})[0] == 200
    return len([m for m in c.quiet(1.0) if m[35] == "8"])


def reused_http_client_order_id(c: Client, server: Server) -> object:
    coid = unique("H")
    body = {"client_order_id": coid, "symbol": "A", "side": "BUY", "quantity": 1, "price": 1}
    assert server.http("POST", "/order", body)[0] == 201
    return new_order(c, coid)[150]


def possdup_copy_answers(c: Client, server: Server) -> object:
    a = unique("A")
    seq = c.seq
    new_order(c, a)
    fields = [(11, a), (55, "INFY"), (54, "1"), (38, 100), (40, "2"), (44, "10.5"), (60, now())]
    copy = c.encode("D", fields, seq=seq, extra_header=[(43, "Y"), (122, now())])
    return answers_before_next(c, "after-copy", copy)


def foreign_compid_answer(c: Client, server: Server) -> object:
    c.send("1", [(112, "x")], sender="SOMEONE")
    return c.expect_any()[35]


def logout_answers(c: Client, server: Server) -> object:
    c.send("5", [])
    return [m[35] for m in c.quiet(1.0)]


def cancel_after_replace(c: Client, server: Server) -> object:
    a = unique("A")
    new_order(c, a)
    c.send("G", [(41, a), (11, a + "-2"), (38, 50), (60, now())])
    c.expect("8")
    c.send("F", [(41, a + "-2"), (11, a + "-3"), (60, now())])
    return c.expect("9")[102]  # MODIFIED x cancel: too late (0), not unknown order (1)


def replace_reusing_clordid(c: Client, server: Server) -> object:
    a, b = unique("A"), unique("B")
    new_order(c, a)
    new_order(c, b)
    c.send("G", [(41, b), (11, a), (38, 50), (60, now())])
    return c.expect_any()[35]


def reject_ref_msg_type(c: Client, server: Server) -> object:
    c.send("D", [(11, unique("M")), (54, "1"), (38, 1), (40, "2"), (44, 1), (60, now())])  # no 55
    return c.expect("3").get(372)


def wrong_bodylength_answer(c: Client, server: Server) -> object:
    short = re.sub(rb"\x019=(\d+)\x01", b"\x019=7\x01", c.encode("1", [(112, "short")]))
    c.seq -= 1  # ignored: its MsgSeqNum is used again
    c.sock.sendall(short + c.encode("1", [(112, "after-short")]))
    return c.expect_any()[35]


def logon_then_stored_reports(c: Client, server: Server) -> object:
    ack = new_order(c, unique("O"))
    seq = c.seq
    c.send("5", [])
    c.expect("5")
    c.close()
    assert server.http("POST", f"/order/{ack[37]}/execute", {})[0] == 200
    again = Client(server.fix_port, seq + 1)
    try:
        again.send("A", [(98, 0), (108, 30)])
        return [m[35] for m in again.quiet(1.0)]
    finally:
        again.close()


def outgoing_seqs(c: Client, server: Server) -> object:
    seqs = []
    for i in range(7):  # the Logon was 1: the answers are 2..8
        c.send("1", [(112, f"s{i}")])
        seqs.append(int(c.expect("0")[34]))
    return seqs


# fault -> (scenario, what a clean server shows, what the fault shows)
FAULT_TESTS: dict[str, tuple] = {
    "fix-no-fill-report": (sees_fill, True, False),
    "fix-fill-no-lastpx": (fill_lastpx, (True, True), (False, False)),
    "fix-cumqty-wrong": (fill_quantities, ("100", "0"), ("0", "100")),
    "fix-modified-39-5": (modified_status, "0", "5"),
    "fix-execid-reused": (execid_shared, False, True),
    "fix-no-ordrejreason": (duplicate_reason, "6", None),
    "fix-cxlrej-wrong-status": (cxlrej_status, "2", "8"),
    "fix-unknown-order-37": (unknown_order_id, "NONE", "UNKNOWN"),
    "fix-no-session-reject": (malformed_answers, ["3", "j"], []),
    "fix-resend-no-possdup": (resent_possdup, "Y", None),
    "fix-resend-admin": (resent_first, "4", "A"),
    "fix-low-seq-accepted": (low_seq_answer, "5", "0"),
    "fix-garbled-rejected": (garbled_answers, [], ["3"]),
    "fix-offline-reports-lost": (offline_reports, 1, 0),
    "fix-clordid-trimmed": (clordid_echo, (True, True), (False, False)),
    "fix-cxlrej-no-41": (cxlrej_orig, "NOPE", None),
    "fix-report-41-new": (replace_orig, "replaced", "new"),
    "fix-status-39-new": (status_of_cancelled, "4", "0"),
    "fix-unsolicited-old-price": (unsolicited_modify_price, "9", "10.5"),
    "fix-ordrej-13-for-all": (too_many_places_reason, "99", "13"),
    "fix-gapfill-high": (gap_fill_new_seq, "2", "3"),
    "fix-resend-current-state": (resent_status, "0", "4"),
    "fix-offline-twice": (offline_reports, 1, 2),
    "fix-http-orders-reported": (http_order_reports, 0, 1),
    "fix-dup-vs-http": (reused_http_client_order_id, "8", "0"),
    "fix-possdup-reprocessed": (possdup_copy_answers, [], ["8"]),
    "fix-compid-not-checked": (foreign_compid_answer, "3", "0"),
    "fix-no-logout-ack": (logout_answers, ["5"], []),
    "fix-orig-not-advanced": (cancel_after_replace, "0", "1"),
    "fix-clordid-reuse-accepted": (replace_reusing_clordid, "9", "8"),
    "fix-reject-no-372": (reject_ref_msg_type, "D", None),
    "fix-bodylength-logout": (wrong_bodylength_answer, "0", "5"),
    "fix-reports-before-logon": (logon_then_stored_reports, ["A", "8"], ["8", "A"]),
    "fix-seq-skip": (outgoing_seqs, [2, 3, 4, 5, 6, 7, 8], [2, 3, 4, 5, 6, 7, 9]),
}
# shown by test_kill_9_and_restart_resumes_... and test_sent_messages_are_resent_after_a_restart
RESTART_FAULTS = {"fix-seq-reset-on-restart", "fix-sent-not-persisted"}


def test_every_fix_fault_is_listed_with_its_rule_and_tested() -> None:
    out = subprocess.run([sys.executable, str(MINIMAL), "--list-faults"], capture_output=True, text=True, check=True)
    rules = {line.split()[0]: line.split(None, 1)[1] for line in out.stdout.splitlines() if line.startswith("fix-")}
    assert set(rules) == set(FAULT_TESTS) | RESTART_FAULTS
    assert all(rule.startswith("FIX: ") for rule in rules.values())


@pytest.fixture(scope="module")
def shared_clean(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running(tmp_path_factory.mktemp("clean")) as server:
        yield server


@pytest.mark.parametrize("fault", sorted(FAULT_TESTS))
def test_each_fix_fault_changes_its_behaviour(shared_clean: Server, tmp_path: Path, fault: str) -> None:
    scenario, clean_shows, fault_shows = FAULT_TESTS[fault]
    with session(shared_clean, reset=True) as c:
        assert scenario(c, shared_clean) == clean_shows
    with running(tmp_path, fault) as server, session(server, reset=True) as c:
        assert scenario(c, server) == fault_shows


def test_engine_faults_show_through_the_fix_face(tmp_path: Path) -> None:
    with running(tmp_path, "cancel-modified") as server, session(server) as c:
        new_order(c, "A")
        c.send("G", [(41, "A"), (11, "B"), (38, 50), (60, now())])
        c.expect("8")
        c.send("F", [(41, "B"), (11, "C"), (60, now())])
        assert c.expect("8")[150] == "4"  # clean: 35=9 (MODIFIED x cancel refused)


# --------------------------------------------------------------------------------------
# Reconnects: a closing connection never touches the next connection's session state
# --------------------------------------------------------------------------------------


@contextmanager
def http_load(server: Server, threads: int = 3) -> Iterator[None]:
    """Orders created over HTTP meanwhile: contention for the server's locks (and its GIL)
    that widens the moment between a connection's close and its last bookkeeping."""
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError):
                server.http("POST", "/order", {"symbol": "LOAD", "side": "BUY", "quantity": 1, "price": 1})

    workers = [threading.Thread(target=hammer, daemon=True) for _ in range(threads)]
    for w in workers:
        w.start()
    try:
        yield
    finally:
        stop.set()
        for w in workers:
            w.join(WAIT)


def test_logout_then_immediate_reset_logon_keeps_the_new_sequence_numbers(clean: Server) -> None:
    """30 times: Logon(141=Y) -> TestRequest -> Logout, then at once Logon(141=Y) on a new
    connection -> TestRequest answered with MsgSeqNum 2 (and our 2 accepted).  The old
    connection's bookkeeping of its Logout, still running when the new Logon arrives,
    must not overwrite the numbers the new connection's reset set (it did: "MsgSeqNum too
    low, expecting 4 but received 2").  The new Logon goes on a connection opened before
    the Logout or on one opened after its answer; the short pause before the TestRequest
    lets such a late update land first, so it cannot go unseen."""
    c = Client(clean.fix_port)
    try:
        with http_load(clean):
            logon = c.logon(reset=True)
            assert (logon[34], logon[141]) == ("1", "Y")
            for i in range(30):
                c.send("1", [(112, f"t{i}")])  # MsgSeqNum 2 after each reset
                answer = c.expect_any()
                assert (answer[35], answer.get(112), answer[34]) == ("0", f"t{i}", "2"), (i, answer)
                opened_before = i % 2 == 0
                nxt = Client(clean.fix_port) if opened_before else None
                try:
                    c.send("5", [])
                    bye = c.expect("5")
                    assert (bye[34], bye.get(58)) == ("3", None), (i, bye)
                    nxt = nxt or Client(clean.fix_port)
                    logon = nxt.logon(reset=True)
                    assert (logon[34], logon[141]) == ("1", "Y"), (i, logon)
                except BaseException:
                    if nxt is not None:
                        nxt.close()
                    raise
                c.close()
                c = nxt
                time.sleep(0.02)
            c.send("1", [(112, "last")])
            answer = c.expect_any()
            assert (answer[35], answer.get(112), answer[34]) == ("0", "last", "2"), answer
    finally:
        c.close()
