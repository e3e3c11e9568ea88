"""The FIX application mapping (DESIGN.md, "FIX 4.4 face") against a raw simplefix client:
the same engine, the same book, the same id sequence and the same audit log as the other faces."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fix_support import Msg, RawClient, new_order, now, running_acceptor

import oms
from oms.engine import Engine
from oms.errors import DuplicateClientOrderId, InvalidTransition, OrderNotFound, ValidationError
from oms.fix import connect
from oms.fix.acceptor import FixAcceptor
from oms.fix.gateway import NotSupported
from oms.gateway import Gateway, SqlCapable
from oms.lifecycle import Action, Status


@pytest.fixture
def engine() -> Iterator[Engine]:
    with oms.open(":memory:", clock=oms.SimulatedClock()) as e:
        yield e


@pytest.fixture
def acceptor(engine: Engine) -> Iterator[FixAcceptor]:
    with running_acceptor(engine, targets=("CLIENT", "OTHER")) as acc:
        yield acc


@pytest.fixture
def client(acceptor: FixAcceptor) -> Iterator[RawClient]:
    c = RawClient(acceptor.port)
    c.logon()
    yield c
    c.close()


def enter(client: RawClient, clordid: str, **kw: str) -> Msg:
    client.send("D", new_order(clordid, **kw))
    return client.expect("8")


def replace(client: RawClient, clordid: str, orig: str, *, qty: str = "100", price: str = "1499.5",
            symbol: str = "INFY", side: str = "1") -> Msg:  # fmt: skip
    body = [(11, clordid), (41, orig), (55, symbol), (54, side), (38, qty), (40, "2"), (44, price), (60, now())]
    client.send("G", body)
    return client.next()


def cancel(client: RawClient, clordid: str, orig: str | None, order_id: str | None = None) -> Msg:
    body = [(11, clordid)] + ([(41, orig)] if orig else []) + ([(37, order_id)] if order_id else [])
    client.send("F", [*body, (55, "INFY"), (54, "1"), (60, now())])
    return client.next()


def test_a_new_order_single_is_acknowledged_with_an_execution_report_new(client: RawClient, engine: Engine) -> None:
    er = enter(client, "ORD-1")
    assert (er[150], er[39], er[37], er[11]) == ("0", "0", "1", "ORD-1")
    assert (er[55], er[54], er[38], er[44], er[40]) == ("INFY", "1", "100", "1500.25", "2")
    assert (er[14], er[151], er[6]) == ("0", "100", "0")
    order = engine.get(1)
    assert order.client_order_id == "ORD-1" and order.status is Status.NEW


def test_exec_ids_are_unique_across_reports(client: RawClient) -> None:
    ids = [enter(client, f"U-{i}")[17] for i in range(3)]
    ids.append(replace(client, "U-0b", "U-0")[17])
    ids.append(cancel(client, "U-1b", "U-1")[17])
    ids.append(enter(client, "U-0")[17])  # a rejected duplicate
    assert len(set(ids)) == len(ids)


def test_a_duplicate_clordid_is_rejected_with_reason_6(client: RawClient, engine: Engine) -> None:
    enter(client, "DUP")
    er = enter(client, "DUP")
    assert (er[150], er[39], er[103], er[37]) == ("8", "8", "6", "NONE")
    assert "already used" in er[58]
    assert engine.events()[-1].reason == "DUPLICATE_CLIENT_ORDER_ID"


@pytest.mark.parametrize("qty", ["0", "-5", "1.5", "abc"])
def test_an_incorrect_quantity_is_rejected_with_reason_13(client: RawClient, qty: str) -> None:
    er = enter(client, "Q", qty=qty)
    assert (er[150], er[39], er[103]) == ("8", "8", "13")
    assert er[58].startswith("quantity")


def test_any_other_refused_create_is_rejected_with_reason_99(client: RawClient, engine: Engine) -> None:
    er = enter(client, "P", price="1.23456")
    assert (er[150], er[103]) == ("8", "99") and "price" in er[58]
    er = enter(client, "M", ord_type="1", price="10")  # a price on a MARKET order
    assert (er[150], er[103]) == ("8", "99")
    assert [e.accepted for e in engine.events()] == [False, False]


def test_a_market_order_is_accepted_without_a_price(client: RawClient, engine: Engine) -> None:
    er = enter(client, "MKT", ord_type="1", price=None)
    assert (er[150], er[40]) == ("0", "1") and er.get(44) is None
    assert engine.get(int(er[37])).order_type.value == "MARKET"


def test_a_replace_is_reported_with_the_new_values_and_ord_status_new(client: RawClient, engine: Engine) -> None:
    enter(client, "A")
    er = replace(client, "A2", "A", qty="50", price="1490")
    assert (er.type, er[150], er[39], er[11], er[41], er[37]) == ("8", "5", "0", "A2", "A", "1")
    assert (er[38], er[44], er[151]) == ("50", "1490", "50")
    order = engine.get(1)
    assert (order.status, order.quantity, str(order.price)) == (Status.MODIFIED, 50, "1490")


def test_a_cancel_is_reported_canceled(client: RawClient, engine: Engine) -> None:
    enter(client, "C")
    er = cancel(client, "C2", "C")
    assert (er.type, er[150], er[39], er[11], er[41], er[151]) == ("8", "4", "4", "C2", "C", "0")
    assert engine.get(1).status is Status.CANCELLED


def test_a_cancel_by_order_id_alone_is_accepted(client: RawClient, engine: Engine) -> None:
    enter(client, "BYID")
    er = cancel(client, "BYID2", None, order_id="1")
    assert (er[150], er[39]) == ("4", "4")


def test_a_cancel_of_a_modified_order_is_refused_with_a_cancel_reject(client: RawClient, engine: Engine) -> None:
    enter(client, "M1")
    replace(client, "M2", "M1")
    rej = cancel(client, "M3", "M2")
    assert (rej.type, rej[434], rej[102], rej[39], rej[37], rej[11], rej[41]) == ("9", "1", "0", "0", "1", "M3", "M2")
    assert "cannot cancel order 1: status is MODIFIED" in rej[58]
    assert engine.events()[-1].reason == "INVALID_TRANSITION"


def test_a_replace_of_a_cancelled_order_is_refused_too_late(client: RawClient) -> None:
    enter(client, "X1")
    cancel(client, "X2", "X1")
    rej = replace(client, "X3", "X2")
    assert (rej.type, rej[434], rej[102], rej[39]) == ("9", "2", "0", "4")


def test_a_replace_or_cancel_of_an_unknown_order_is_refused_unknown_order(client: RawClient) -> None:
    rej = replace(client, "N2", "NOPE")
    assert (rej.type, rej[434], rej[102], rej[39], rej[37]) == ("9", "2", "1", "8", "NONE")
    rej = cancel(client, "N3", None, order_id="77")
    assert (rej.type, rej[434], rej[102], rej[39], rej[37]) == ("9", "1", "1", "8", "NONE")


def test_a_replace_must_name_the_latest_clordid(client: RawClient) -> None:
    enter(client, "L1")
    replace(client, "L2", "L1")
    rej = replace(client, "L3", "L1")
    assert (rej.type, rej[102], rej[39]) == ("9", "99", "0")
    assert "latest ClOrdID" in rej[58]


def test_a_replace_that_changes_the_symbol_is_refused_other(client: RawClient) -> None:
    enter(client, "S1")
    rej = replace(client, "S2", "S1", symbol="TCS")
    assert (rej.type, rej[102]) == ("9", "99")


def test_an_order_status_request_is_answered_with_exec_type_i(client: RawClient) -> None:
    enter(client, "ST")
    client.send("H", [(11, "ST"), (55, "INFY"), (54, "1"), (790, "REQ-1")])
    er = client.expect("8")
    assert (er[150], er[39], er[37], er[17], er[790], er[11]) == ("I", "0", "1", "0", "REQ-1", "ST")


def test_an_order_status_request_for_an_unknown_order_says_none(client: RawClient) -> None:
    client.send("H", [(37, "42"), (11, "WHO"), (55, "INFY"), (54, "1")])
    er = client.expect("8")
    assert (er[150], er[39], er[37]) == ("I", "8", "NONE")


def test_an_unsupported_message_type_gets_a_business_message_reject(client: RawClient) -> None:
    client.send("AE", [(571, "X")])
    rej = client.expect("j")
    assert (rej[372], rej[380], rej[45]) == ("AE", "3", "2")
    client.send("1", [(112, "up")])
    assert client.expect("0")[112] == "up"


def test_an_execute_from_another_face_sends_a_fill_to_the_session_that_entered_it(
    client: RawClient, acceptor: FixAcceptor
) -> None:
    enter(client, "F1")
    acceptor.gateway.execute(1, price="1500")
    fill = client.expect("8")
    assert (fill[150], fill[39], fill[31], fill[32], fill[14], fill[151], fill[6]) == (
        "F", "2", "1500", "100", "100", "0", "1500"
    )  # fmt: skip
    assert fill[11] == "F1"


def test_a_cancel_from_another_face_is_reported_unsolicited(client: RawClient, acceptor: FixAcceptor) -> None:
    enter(client, "U1")
    acceptor.gateway.cancel(1)
    report = client.expect("8")
    assert (report[150], report[39], report[37]) == ("4", "4", "1")


def test_a_fill_for_a_logged_out_session_reaches_it_after_its_next_logon(
    client: RawClient, acceptor: FixAcceptor
) -> None:
    enter(client, "LATER")
    client.send("5", [])
    client.expect("5")
    assert client.closed_by_peer()
    acceptor.gateway.execute(1)
    again = RawClient(acceptor.port, seq=client.seq)
    try:
        again.logon()
        fill = again.expect("8")
        assert (fill[150], fill[11]) == ("F", "LATER")
    finally:
        again.close()


def test_orders_entered_over_fix_share_the_engines_book_ids_and_audit_log(
    client: RawClient, acceptor: FixAcceptor, engine: Engine
) -> None:
    engine.create(symbol="TCS", side="SELL", quantity=5, price="10")  # order 1, another face
    assert enter(client, "SHARED")[37] == "2"
    replace(client, "SHARED-2", "SHARED", qty="60")
    assert [o.order_id for o in engine.orders()] == [1, 2]
    assert [(e.action, e.accepted) for e in engine.events(2)] == [(Action.CREATE, True), (Action.MODIFY, True)]
    assert engine.replay() == engine.orders()


def test_each_session_gets_only_its_own_orders_fills(acceptor: FixAcceptor) -> None:
    a, b = RawClient(acceptor.port), RawClient(acceptor.port, sender="OTHER")
    try:
        a.logon()
        b.logon()
        enter(a, "A-ORDER")
        enter(b, "B-ORDER")
        acceptor.gateway.execute(2)
        assert b.expect("8")[11] == "B-ORDER"
        a.send("1", [(112, "nothing-for-a")])
        assert a.expect("0", skip=())[112] == "nothing-for-a"
    finally:
        a.close()
        b.close()


def test_the_session_store_survives_an_acceptor_restart_in_process(tmp_path: Path) -> None:
    db, store = tmp_path / "oms.duckdb", str(tmp_path / "oms.duckdb.fix.sqlite")
    with oms.open(db) as engine, running_acceptor(engine, store) as acc:
        c = RawClient(acc.port)
        c.logon()
        enter(c, "P1")
        c.send("5", [])
        c.expect("5")
        assert c.closed_by_peer()
        c.close()
    with oms.open(db) as engine, running_acceptor(engine, store) as acc:
        c = RawClient(acc.port, seq=c.seq)
        try:
            assert c.logon().seq == 4  # 1 Logon, 2 report, 3 Logout, then this
            er = cancel(c, "P2", "P1")
            assert (er[150], er[41]) == ("4", "P1")
        finally:
            c.close()


# ---- the FIX gateway: the Gateway protocol over FIX ----------------------------------


def test_the_fix_gateway_creates_modifies_cancels_and_gets_over_fix(acceptor: FixAcceptor, engine: Engine) -> None:
    assert isinstance(acceptor.gateway, Gateway)
    with connect(f"fix://127.0.0.1:{acceptor.port}?sender=CLIENT&target=OMS") as gw:
        assert isinstance(gw, Gateway) and not isinstance(gw, SqlCapable)  # a capability FIX does not offer
        o = gw.create(symbol="infy", side="BUY", quantity=100, price="1500.25", client_order_id="GW-1")
        assert (o.order_id, o.symbol, o.status, o.version, o.client_order_id) == (1, "INFY", Status.NEW, 1, "GW-1")
        m = gw.modify(1, quantity=50)
        assert (m.status, m.quantity, m.version) == (Status.MODIFIED, 50, 2)
        with pytest.raises(InvalidTransition):
            gw.cancel(1)
        o2 = gw.create(symbol="TCS", side="SELL", quantity=1, price="10")
        assert gw.cancel(o2.order_id).status is Status.CANCELLED
        with pytest.raises(DuplicateClientOrderId):
            gw.create(symbol="TCS", side="SELL", quantity=1, price="10", client_order_id="GW-1")
        with pytest.raises(ValidationError) as refused:
            gw.create(symbol="TCS", side="SELL", quantity=0, price="10")
        assert refused.value.fields == ["quantity"]
        with pytest.raises(OrderNotFound):
            gw.get(99)
        assert gw.get(1).quantity == 50
        assert [o.order_id for o in gw.orders()] == [o.order_id for o in engine.orders()]
        with pytest.raises(NotSupported):
            gw.execute(1)
        with pytest.raises(NotSupported):
            gw.events(1)


def test_the_fix_gateway_sees_fills_made_on_another_face(acceptor: FixAcceptor) -> None:
    with connect(f"fix://127.0.0.1:{acceptor.port}?sender=CLIENT&target=OMS") as gw:
        o = gw.create(symbol="INFY", side="SELL", quantity=10, price="100")
        acceptor.gateway.execute(o.order_id, price="101")
        filled = gw.get(o.order_id)  # answered after the fill: reports arrive in order
        assert (filled.status, filled.executed_quantity, str(filled.executed_price)) == (Status.EXECUTED, 10, "101")
        assert [x.order_id for x in gw.orders(status="EXECUTED")] == [o.order_id]
