"""``oms serve --fix-port``: one process, one engine, two faces. A real server on loopback:
an order entered over FIX and executed, modified or cancelled over REST is reported to the
FIX session that entered it (150=F/5/4); the FIX session's own changes are answered once;
the orders and their audit events are the REST listing's; SIGTERM stops both faces and
exits 0; a restart resumes the FIX sequence numbers; ``oms.connect("fix://...")`` is a
gateway of the same server. Every wait is bounded and waits for a message or an exit."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fix_support import Msg, RawClient, new_order, now

import oms
from conftest import ServeProcess, free_port
from oms.fix.acceptor import OwnChanges
from oms.fix.gateway import FixGateway
from oms.lifecycle import Action, Status
from oms.model import Order

Serve = Callable[..., ServeProcess]


def serve_fix(serve: Serve, db: Path, *args: str) -> tuple[ServeProcess, int]:
    fix_port = free_port()
    return serve(db, args=("--fix-port", str(fix_port), *args)), fix_port


def enter(client: RawClient, clordid: str, **kw: str) -> Msg:
    client.send("D", new_order(clordid, **kw))
    ack = client.expect("8")
    assert (ack[150], ack[39], ack[11]) == ("0", "0", clordid), str(ack)
    return ack


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


@pytest.mark.slow
def test_rest_changes_reach_the_fix_session_and_a_restart_resumes_it(serve: Serve, db_path: Path) -> None:
    server, fix_port = serve_fix(serve, db_path)
    client = RawClient(fix_port)
    try:
        client.logon()
        filled_id = int(enter(client, "X1", qty="100", price="1500.25")[37])
        with server.connect() as rest:
            rest.execute(filled_id, price="1500")
            fill = client.expect("8")
            assert (fill[150], fill[39], fill[37], fill[11]) == ("F", "2", str(filled_id), "X1")
            assert (fill[32], fill[31], fill[14], fill[151], fill[6]) == ("100", "1500", "100", "0", "1500")

            modified_id = int(enter(client, "X2", qty="80")[37])
            rest.modify(modified_id, quantity=50)
            replaced = client.expect("8")
            assert (replaced[150], replaced[39], replaced[38], replaced[11]) == ("5", "0", "50", "X2")

            cancelled_id = int(enter(client, "X3")[37])
            rest.cancel(cancelled_id)
            cancelled = client.expect("8")
            assert (cancelled[150], cancelled[39], cancelled[151], cancelled[11]) == ("4", "4", "0", "X3")

            # The session's own replace is answered once: the next report is REST's fill.
            own_id = int(enter(client, "X4")[37])
            client.send("G", [(11, "X4b"), (41, "X4"), (55, "INFY"), (54, "1"), (38, "60"), (40, "2"),
                              (44, "1500.25"), (60, now())])  # fmt: skip
            ack = client.expect("8")
            assert (ack[150], ack[11], ack[41]) == ("5", "X4b", "X4")
            rest.execute(own_id)
            after = client.expect("8")
            assert (after[150], after[11], after[32]) == ("F", "X4b", "60")

        listing = {o["client_order_id"]: o for o in httpx.get(f"{server.url}/orders", timeout=10).json()}
        assert {k: (o["order_id"], o["status"]) for k, o in listing.items()} == {
            "X1": (filled_id, "EXECUTED"), "X2": (modified_id, "MODIFIED"),
            "X3": (cancelled_id, "CANCELLED"), "X4": (own_id, "EXECUTED"),
        }  # fmt: skip
        events = httpx.get(f"{server.url}/order/{own_id}/events", timeout=10).json()
        assert [(e["action"], e["accepted"]) for e in events] == [("create", True), ("modify", True),
                                                                   ("execute", True)]  # fmt: skip

        assert server.terminate() == 0
        logout = client.expect("5")
        assert logout[58] == "the server is stopping"
        assert client.closed_by_peer()
    finally:
        client.close()
    assert "FIX stopped" in server.log and "stopped; " in server.log and "Traceback" not in server.log
    assert refused(server.port) and refused(fix_port)  # both faces are gone
    last_seq = max(m.seq for m in client.inbox)
    fill_seq = fill.seq

    server, fix_port = serve_fix(serve, db_path)
    again = RawClient(fix_port, seq=client.seq)
    try:
        assert again.logon().seq == last_seq + 1  # the acceptor's numbers continue
        again.send("2", [(7, str(fill_seq)), (16, str(fill_seq))])
        resent = again.expect("8", skip=())
        assert (resent.seq, resent[43], resent[150], resent[17]) == (fill_seq, "Y", "F", fill[17])
        with server.connect() as rest:
            assert rest.get(filled_id).status is Status.EXECUTED
        assert server.terminate() == 0
    finally:
        again.close()


@pytest.mark.slow
def test_the_fix_gateway_of_a_served_book_creates_and_cancels_beside_rest(serve: Serve, db_path: Path) -> None:
    server, fix_port = serve_fix(serve, db_path, "--fix-target", "DESK", "--fix-target", "CLIENT")
    gateway = oms.connect(f"fix://127.0.0.1:{fix_port}?sender=DESK&target=OMS")
    try:
        assert isinstance(gateway, FixGateway)
        with gateway, server.connect() as rest:
            created = gateway.create(symbol="TCS", side="SELL", quantity=7, price="3890.5", client_order_id="GW-1")
            assert rest.get(created.order_id).client_order_id == "GW-1"
            assert gateway.cancel(created.order_id).status is Status.CANCELLED
            assert rest.get(created.order_id).status is Status.CANCELLED
            other = gateway.create(symbol="TCS", side="BUY", quantity=3, price="3890")
            rest.execute(other.order_id)
            assert gateway.get(other.order_id).status is Status.EXECUTED
            assert [(e.action, e.accepted) for e in rest.events(created.order_id)] == [
                (Action.CREATE, True), (Action.CANCEL, True)
            ]  # fmt: skip
    finally:
        assert server.terminate() == 0


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--host", "0.0.0.0", "--fix-port", "9"), "--fix-allow-remote"),
        (("--fix-target", "CLIENT"), "without --fix-port"),
        (("--fix-port", "9", "--fix-sender", "SAME", "--fix-target", "SAME"), "also a --fix-target"),
    ],
)
def test_a_refused_fix_configuration_is_one_line_and_exit_2(
    serve: Serve, db_path: Path, args: tuple[str, ...], says: str
) -> None:
    server = serve(db_path, token="a-token", args=args, ready=False)
    assert server.wait() == 2
    assert says in server.log and server.log.count("\n") == 1
    assert not db_path.exists()


@pytest.mark.slow
def test_a_fix_port_in_use_is_one_line_and_exit_1(serve: Serve, db_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        server = serve(db_path, args=("--fix-port", str(busy.getsockname()[1])), ready=False)
        assert server.wait() == 1
    assert "cannot serve FIX" in server.log and server.log.count("\n") == 1
    with oms.open(db_path) as engine:  # released
        assert engine.orders() == []


# ---- which commits are reported: the sessions' own changes are answered, not reported ----


def _order(version: int) -> Order:
    """Order 1 at ``version`` 1 (NEW) or 2 (MODIFIED)."""
    with oms.open(":memory:", clock=oms.SimulatedClock()) as engine:
        engine.create(symbol="INFY", side="BUY", quantity=10, price="1")
        return engine.modify(1, quantity=5) if version == 2 else engine.get(1)


def test_own_changes_are_dropped_whichever_arrives_first_and_others_are_reported() -> None:
    reported: list[tuple[int, Action]] = []
    own = OwnChanges(lambda order, action: reported.append((order.version, action)))
    mine = _order(2)
    with own.making(1) as made:  # the engine reports the commit before the call returns
        own.committed(Action.MODIFY, mine)
        made.append(mine)
    assert reported == []
    with own.making(1) as made:  # ... or after
        made.append(mine)
    own.committed(Action.MODIFY, mine)
    assert reported == []
    with own.making(1) as made:  # another face's change while a refused call was in flight: held, then sent
        own.committed(Action.CANCEL, _order(1))
        assert reported == []
    assert reported == [(1, Action.CANCEL)]
    own.committed(Action.EXECUTE, mine)  # nothing in flight: reported at once
    assert reported[-1] == (2, Action.EXECUTE)


def test_the_readme_shows_the_fix_mapping_as_generated() -> None:
    from oms.fix.mapping import to_markdown

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    begin, end = "<!-- fix-mapping:begin -->\n", "<!-- fix-mapping:end -->"
    assert readme.count(begin) == 1 and readme.count(end) == 1
    assert readme[readme.index(begin) + len(begin) : readme.index(end)] == to_markdown()
