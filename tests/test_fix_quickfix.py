"""Interoperability with an independent FIX engine: a QuickFIX (C++) initiator, with its own
configuration, FileStore and the FIX44.xml data dictionary shipped in its wheel (so every
message we send is validated by QuickFIX), logs on to our acceptor, enters, replaces and
cancels orders, and receives the right ExecutionReports and OrderCancelRejects."""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fix_support import WAIT, running_acceptor

import oms
from oms.engine import Engine
from oms.fix.acceptor import FixAcceptor
from oms.lifecycle import Status

fix = pytest.importorskip("quickfix", reason="quickfix-ssl (the dev extra) is not installed")
fix44 = pytest.importorskip("quickfix44")

pytestmark = pytest.mark.slow


def data_dictionary() -> Path:
    """FIX44.xml as the quickfix-ssl wheel installs it (``<prefix>/share/quickfix``)."""
    for base in (Path(sys.prefix), Path(sys.base_prefix)):
        candidate = base / "share" / "quickfix" / "FIX44.xml"
        if candidate.exists():
            return candidate
    raise AssertionError("FIX44.xml not found beside the quickfix wheel")


def fields(message: object) -> dict[int, str]:
    text: str = message.toString()  # type: ignore[attr-defined]
    return {int(t): v for t, _, v in (p.partition("=") for p in text.split("\x01") if p)}


class Initiator(fix.Application):  # type: ignore[misc, name-defined]
    """A QuickFIX application that files every application message it receives."""

    def __init__(self) -> None:
        super().__init__()
        self.session_id: object = None
        self.logged_on = threading.Event()
        self.logged_out = threading.Event()
        self.received: queue.Queue[dict[int, str]] = queue.Queue()
        self.rejected: queue.Queue[dict[int, str]] = queue.Queue()

    def onCreate(self, session_id: object) -> None:
        self.session_id = session_id

    def onLogon(self, session_id: object) -> None:
        self.logged_on.set()

    def onLogout(self, session_id: object) -> None:
        self.logged_out.set()

    def toAdmin(self, message: object, session_id: object) -> None:
        pass

    def fromAdmin(self, message: object, session_id: object) -> None:
        if fields(message).get(35) == "3":
            self.rejected.put(fields(message))

    def toApp(self, message: object, session_id: object) -> None:
        pass

    def fromApp(self, message: object, session_id: object) -> None:
        self.received.put(fields(message))

    def send(self, message: object) -> None:
        assert fix.Session.sendToTarget(message, self.session_id)

    def next(self) -> dict[int, str]:
        try:
            return self.received.get(timeout=WAIT)
        except queue.Empty:
            rejects = list(self.rejected.queue)
            raise AssertionError(f"no report from the acceptor (QuickFIX rejected: {rejects})") from None


@pytest.fixture
def engine() -> Iterator[Engine]:
    with oms.open(":memory:", clock=oms.SimulatedClock()) as e:
        yield e


@pytest.fixture
def acceptor(engine: Engine) -> Iterator[FixAcceptor]:
    with running_acceptor(engine, targets=("QF",)) as acc:
        yield acc


@pytest.fixture
def quickfix(acceptor: FixAcceptor, tmp_path: Path) -> Iterator[Initiator]:
    config = tmp_path / "initiator.cfg"
    config.write_text(
        "\n".join([
            "[DEFAULT]",
            "ConnectionType=initiator",
            "HeartBtInt=30",
            "ReconnectInterval=1",
            f"FileStorePath={tmp_path / 'store'}",
            f"FileLogPath={tmp_path / 'log'}",
            "StartTime=00:00:00",
            "EndTime=00:00:00",
            "UseDataDictionary=Y",
            f"DataDictionary={data_dictionary()}",
            "ResetOnLogon=Y",
            "[SESSION]",
            "BeginString=FIX.4.4",
            "SenderCompID=QF",
            "TargetCompID=OMS",
            "SocketConnectHost=127.0.0.1",
            f"SocketConnectPort={acceptor.port}",
            "",
        ])
    )  # fmt: skip
    settings = fix.SessionSettings(str(config))
    app = Initiator()
    initiator = fix.SocketInitiator(app, fix.FileStoreFactory(settings), settings, fix.FileLogFactory(settings))
    initiator.start()
    try:
        assert app.logged_on.wait(WAIT), "QuickFIX did not log on"
        yield app
    finally:
        initiator.stop()


def build(message: object, *values: object) -> object:
    for value in values:
        message.setField(value)  # type: ignore[attr-defined]
    return message


def new_order(clordid: str, qty: int = 100, price: float = 1500.25) -> object:
    return build(fix44.NewOrderSingle(), fix.ClOrdID(clordid), fix.Side(fix.Side_BUY), fix.TransactTime(),
                 fix.OrdType(fix.OrdType_LIMIT), fix.Symbol("INFY"), fix.OrderQty(qty), fix.Price(price))  # fmt: skip


def replace(clordid: str, orig: str, qty: int, price: float) -> object:
    return build(fix44.OrderCancelReplaceRequest(), fix.OrigClOrdID(orig), fix.ClOrdID(clordid),
                 fix.Side(fix.Side_BUY), fix.TransactTime(), fix.OrdType(fix.OrdType_LIMIT), fix.Symbol("INFY"),
                 fix.OrderQty(qty), fix.Price(price))  # fmt: skip


def cancel(clordid: str, orig: str) -> object:
    return build(fix44.OrderCancelRequest(), fix.OrigClOrdID(orig), fix.ClOrdID(clordid), fix.Side(fix.Side_BUY),
                 fix.TransactTime(), fix.Symbol("INFY"))  # fmt: skip


def test_a_quickfix_initiator_enters_replaces_and_cancels_orders(quickfix: Initiator, engine: Engine) -> None:
    quickfix.send(new_order("QF-1"))
    ack = quickfix.next()
    assert (ack[35], ack[150], ack[39], ack[11], ack[37]) == ("8", "0", "0", "QF-1", "1")
    quickfix.send(replace("QF-2", "QF-1", qty=50, price=1499.5))
    replaced = quickfix.next()
    assert (replaced[150], replaced[39], replaced[11], replaced[41], replaced[38]) == ("5", "0", "QF-2", "QF-1", "50")
    quickfix.send(cancel("QF-3", "QF-2"))  # a MODIFIED order cannot be cancelled here
    refused = quickfix.next()
    assert (refused[35], refused[434], refused[102], refused[39]) == ("9", "1", "0", "0")
    quickfix.send(new_order("QF-4"))
    assert quickfix.next()[37] == "2"
    quickfix.send(cancel("QF-5", "QF-4"))
    cancelled = quickfix.next()
    assert (cancelled[150], cancelled[39], cancelled[41]) == ("4", "4", "QF-4")
    assert [o.status for o in engine.orders()] == [Status.MODIFIED, Status.CANCELLED]
    assert quickfix.rejected.empty(), "QuickFIX's data dictionary refused one of our messages"


def test_a_quickfix_initiator_gets_refusals_and_fills_with_the_right_reasons(
    quickfix: Initiator, acceptor: FixAcceptor
) -> None:
    quickfix.send(new_order("QF-A"))
    quickfix.next()
    quickfix.send(new_order("QF-A"))
    duplicate = quickfix.next()
    assert (duplicate[150], duplicate[39], duplicate[103], duplicate[37]) == ("8", "8", "6", "NONE")
    quickfix.send(new_order("QF-B", qty=0))
    assert quickfix.next()[103] == "13"
    quickfix.send(cancel("QF-C", "NO-SUCH"))
    unknown = quickfix.next()
    assert (unknown[35], unknown[102], unknown[37], unknown[39]) == ("9", "1", "NONE", "8")
    acceptor.gateway.execute(1)
    fill = quickfix.next()
    assert (fill[150], fill[39], fill[32], fill[31], fill[14], fill[151]) == ("F", "2", "100", "1500.25", "100", "0")
    assert quickfix.rejected.empty(), "QuickFIX's data dictionary refused one of our messages"
