"""tests/faulty_oms/quickfix_acceptor.py, a third FIX 4.4 acceptor built on QuickFIX's C++ engine,
driven as a real process by this repo's own FIX gateway (``oms.connect("fix://...")``): the
DESIGN mapping end to end, and a kill -9 after which the sqlite book and QuickFIX's FileStore
(sequence numbers, sent messages for ResendRequest) carry on. Every wait is bounded."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from fix_support import WAIT, RawClient, new_order, now

import oms
from oms.lifecycle import Status

pytest.importorskip("quickfix", reason="quickfix-ssl (the dev extra) is not installed")

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parent / "faulty_oms" / "quickfix_acceptor.py"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class AcceptorProcess:
    """``python tests/faulty_oms/quickfix_acceptor.py --port PORT --db DIR``, ready once it says so."""

    def __init__(self, directory: Path, port: int) -> None:
        self.directory, self.port = directory, port
        argv = [sys.executable, str(SCRIPT), "--port", str(port), "--db", str(directory)]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.stderr: list[str] = []
        self.ready = threading.Event()
        self.readiness = ""
        self.readers = [threading.Thread(target=self._read_stdout, daemon=True),
                        threading.Thread(target=self._read_stderr, daemon=True)]  # fmt: skip
        for reader in self.readers:
            reader.start()
        if not self.ready.wait(WAIT * 3) or not self.readiness:
            self.kill()
            raise AssertionError(f"the acceptor did not start: {''.join(self.stderr)}")

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("FIX listening on "):
                self.readiness = line.strip()
                self.ready.set()
        self.ready.set()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        self.stderr.extend(self.proc.stderr)

    @property
    def url(self) -> str:
        return f"fix://127.0.0.1:{self.port}?sender=CLIENT&target=OMS"

    def seqnums(self) -> tuple[int, int]:
        """(next sender, next target) MsgSeqNum, from QuickFIX's FileStore."""
        text = (self.directory / "store" / "FIX.4.4-OMS-CLIENT.seqnums").read_text()
        sender, target = (int(part) for part in text.split(":"))
        return sender, target

    def inner_port(self) -> int:
        found = re.search(r"^SocketAcceptPort=(\d+)$", (self.directory / "acceptor.cfg").read_text(), re.M)
        assert found is not None
        return int(found.group(1))

    def _reap(self, timeout: float) -> int:
        code = self.proc.wait(timeout=timeout)
        for reader in self.readers:
            reader.join(timeout=WAIT)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()
        return code

    def kill(self) -> None:
        """kill -9."""
        if self.proc.poll() is None:
            self.proc.kill()
        self._reap(WAIT)

    def terminate(self) -> int:
        """SIGTERM (the acceptor logs its session out first); the exit status."""
        if self.proc.poll() is None:
            self.proc.terminate()
        return self._reap(WAIT * 2)


@pytest.fixture
def start(tmp_path: Path) -> Iterator[type[AcceptorProcess]]:
    started: list[AcceptorProcess] = []

    class Started(AcceptorProcess):
        def __init__(self, directory: Path, port: int) -> None:
            super().__init__(directory, port)
            started.append(self)

    yield Started
    for process in started:
        process.kill()


def refused(call: object, *args: object, **kwargs: object) -> oms.OMSError:
    with pytest.raises(oms.OMSError) as info:
        call(*args, **kwargs)  # type: ignore[operator]
    return info.value


def test_the_mapping_and_a_kill_9(start: type[AcceptorProcess], tmp_path: Path) -> None:
    directory, port = tmp_path / "qf", free_port()
    acceptor = start(directory, port)
    assert acceptor.readiness == f"FIX listening on 127.0.0.1:{port}"

    with oms.connect(acceptor.url) as gw:
        first = gw.create(symbol="infy", side="BUY", quantity=100, price="1500.25", client_order_id="C-1")
        assert (first.order_id, first.status, first.symbol, first.quantity) == (1, Status.NEW, "INFY", 100)
        assert (first.price, first.client_order_id) == (Decimal("1500.25"), "C-1")

        modified = gw.modify(1, price="1499.5")
        assert (modified.status, modified.price, modified.quantity, modified.version) == (
            Status.MODIFIED, Decimal("1499.5"), 100, 2)  # fmt: skip
        error = refused(gw.cancel, 1)  # modify and cancel only while NEW
        assert error.code == "INVALID_TRANSITION" and "MODIFIED" in error.message

        market = gw.create(symbol="TCS", side="SELL", quantity=5, order_type="MARKET")
        assert (market.order_id, market.price) == (2, None)
        cancelled = gw.cancel(2)
        assert (cancelled.status, cancelled.version) == (Status.CANCELLED, 2)
        assert refused(gw.modify, 2, quantity=6).code == "INVALID_TRANSITION"

        assert refused(gw.create, symbol="INFY", side="BUY", quantity=1, price="1", client_order_id="C-1").code == (
            "DUPLICATE_CLIENT_ORDER_ID")  # fmt: skip
        bad = refused(gw.create, symbol="INFY", side="BUY", quantity=0, price="1.00001")
        assert bad.code == "VALIDATION_ERROR" and "quantity" in bad.message and "price" in bad.message
        assert refused(gw.create, symbol="INFY", side="BUY", quantity=1).code == "VALIDATION_ERROR"  # LIMIT, no price
        assert refused(gw.get, 99).code == "ORDER_NOT_FOUND"
        assert refused(gw.execute, 1).code == "NOT_SUPPORTED"  # FIX has no execute message
        assert gw.get(1).price == Decimal("1499.5")
        acceptor.kill()  # kill -9 with the session logged on

    sender_next, target_next = acceptor.seqnums()
    assert sender_next > 10 and target_next > 10
    acceptor = start(directory, port)

    # The session resumes where it was: no reset, the next sequence numbers, and a ResendRequest
    # replays the stored reports (PossDupFlag=Y), the first one the ack of order 1.
    client = RawClient(port, seq=target_next)
    try:
        logon = client.logon()
        assert logon.seq == sender_next and logon.get(141) is None
        client.send("2", [(7, "1"), (16, str(sender_next - 1))])
        replayed = []
        while not replayed or replayed[-1] < sender_next - 1:
            msg = client.next()
            assert msg.get(43) == "Y", msg
            replayed.append(int(msg[36]) - 1 if msg.type == "4" else msg.seq)
            if msg.type == "8" and msg.get(37) == "1" and msg.get(150) == "0":
                assert (msg[11], msg[38], msg[44]) == ("C-1", "100", "1500.25")
            assert len(replayed) <= sender_next
        first_report = next(m for m in client.inbox if m.type == "8")
        assert (first_report[11], first_report[150]) == ("C-1", "0")
        client.send("5", [])
        client.expect("5")
    finally:
        client.close()

    # The book survived: the gateway (which resets the session on logon) finds the old orders,
    # and new ids continue after them.
    with oms.connect(acceptor.url) as gw:
        old = gw.get(1)
        assert (old.symbol, old.quantity, old.price) == ("INFY", 100, Decimal("1499.5"))
        assert old.status is Status.NEW  # FIX 4.4 reports MODIFIED as New (39=0)...
        assert refused(gw.cancel, 1).code == "INVALID_TRANSITION"  # ...but the book knows it is MODIFIED
        assert gw.get(2).status is Status.CANCELLED
        third = gw.create(symbol="WIPRO", side="BUY", quantity=7, price="420.1")
        assert third.order_id == 3
        assert gw.cancel(3).status is Status.CANCELLED
    assert acceptor.terminate() == 0


def test_malformed_messages_and_the_loopback_only_logon(start: type[AcceptorProcess], tmp_path: Path) -> None:
    acceptor = start(tmp_path / "qf", free_port())
    client = RawClient(acceptor.port)
    try:
        client.logon(reset=True)
        client.send("AF", [(584, "M1"), (585, "7")])  # a FIX 4.4 message this acceptor does not take
        reject = client.expect("j")
        assert (reject[45], reject[372], reject[380]) == ("2", "AF", "3")
        client.send("D", new_order("Q-1", qty="abc"))  # QuickFIX's data dictionary: wrong format
        reject = client.expect("3")
        assert (reject[45], reject[372], reject[371], reject[373]) == ("3", "D", "38", "6")
        client.send("D", [*new_order("Q-2"), (59, "1")])  # a field the mapping does not take: refused, named
        report = client.expect("8")
        assert (report[150], report[39], report[103], report[37]) == ("8", "8", "99", "NONE") and "59" in report[58]
        client.send("D", new_order("Q-3", qty="1000000001"))
        report = client.expect("8")
        assert (report[150], report[103]) == ("8", "13")
        client.send("D", new_order("Q-4", price=None, ord_type="1"))  # the session is still up
        report = client.expect("8")
        assert (report[150], report[39], report[37], report[11]) == ("0", "0", "1", "Q-4") and report.get(44) is None
        client.send("F", [(11, "Q-5"), (37, "7"), (55, "INFY"), (54, "1"), (60, now())])
        reject = client.expect("9")
        assert (reject[37], reject[39], reject[434], reject[102]) == ("NONE", "8", "1", "1")
        client.send("5", [])
        client.expect("5")
    finally:
        client.close()

    # QuickFIX itself listens on every interface (this wheel has no SocketAcceptHost), but only
    # the 127.0.0.1 front can log on: a Logon straight to QuickFIX's port is never answered.
    direct = RawClient(acceptor.inner_port(), seq=1)
    try:
        direct.send("A", [(98, "0"), (108, "30"), (554, "a guess")])
        with pytest.raises(TimeoutError):
            direct.next(timeout=1.0)
    finally:
        direct.close()
    assert acceptor.terminate() == 0
