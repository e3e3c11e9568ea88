"""The FIX 4.4 session rules of the acceptor, against a raw simplefix client on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fix_support import RawClient, new_order, running_acceptor

from oms.fix.acceptor import FixAcceptor


@pytest.fixture
def acceptor() -> Iterator[FixAcceptor]:
    with running_acceptor() as acc:
        yield acc


@pytest.fixture
def connect(acceptor: FixAcceptor) -> Iterator[Callable[..., RawClient]]:
    """Open raw clients to the acceptor (all closed at the end of the test)."""
    opened: list[RawClient] = []

    def open_client(**kwargs: Any) -> RawClient:
        opened.append(RawClient(acceptor.port, **kwargs))
        return opened[-1]

    yield open_client
    for c in opened:
        c.close()


@pytest.fixture
def client(connect: Callable[..., RawClient]) -> RawClient:
    return connect()


def test_logon_is_answered_with_logon_and_the_same_heartbeat_interval(client: RawClient) -> None:
    reply = client.logon(heartbeat=30)
    assert reply[108] == "30" and reply[98] == "0" and reply.seq == 1
    assert reply[49] == "OMS" and reply[56] == "CLIENT"


def test_a_test_request_is_answered_with_a_heartbeat_carrying_its_id(client: RawClient) -> None:
    client.logon()
    client.send("1", [(112, "PING-1")])
    assert client.expect("0", skip=())[112] == "PING-1"


def test_a_silent_acceptor_sends_heartbeats_and_a_silent_client_gets_a_test_request(client: RawClient) -> None:
    client.logon(heartbeat=1)
    seen: dict[str, str] = {}
    while not {"0", "1"} <= seen.keys():
        msg = client.next()
        assert msg.type in ("0", "1"), msg
        seen[msg.type] = msg.get(112) or ""
    client.send("0", [(112, seen["1"])])
    client.send("1", [(112, "still-up")])
    assert client.heartbeat_for("still-up")


def test_a_client_that_never_answers_a_test_request_is_disconnected(client: RawClient) -> None:
    client.logon(heartbeat=1)
    assert client.closed_by_peer()
    assert "1" in {m.type for m in client.inbox}


def test_a_sequence_gap_is_answered_with_a_resend_request_and_filled_in_order(
    client: RawClient, acceptor: FixAcceptor
) -> None:
    client.logon()
    client.send("D", new_order("A-1"), seq=3)  # 2 is missing
    request = client.expect("2")
    assert (request[7], request[16]) == ("2", "0")
    client.send("D", new_order("A-0"), seq=2, poss_dup=True)
    first, second = client.expect("8"), client.expect("8")
    assert (first[11], second[11]) == ("A-0", "A-1")
    assert acceptor.sessions["CLIENT"].next_in == 4


def test_a_gap_filled_by_sequence_reset_gap_fill_moves_the_expected_number(
    client: RawClient, acceptor: FixAcceptor
) -> None:
    client.logon()
    client.send("1", [(112, "T")], seq=5)
    assert client.expect("2")[7] == "2"
    client.send("4", [(123, "Y"), (36, "5")], seq=2, poss_dup=True)
    assert client.expect("0")[112] == "T"  # the queued TestRequest 5 is processed once the gap closes
    assert acceptor.sessions["CLIENT"].next_in == 6


def test_a_sequence_reset_in_reset_mode_sets_the_number_and_cannot_lower_it(
    client: RawClient, acceptor: FixAcceptor
) -> None:
    client.logon()
    client.send("4", [(36, "10")], seq=99)
    client.seq = 10
    client.send("1", [(112, "after-reset")])
    assert client.expect("0")[112] == "after-reset"
    client.send("4", [(36, "3")], seq=1)
    reject = client.expect("3")
    assert reject[373] == "5" and reject[371] == "36"
    assert acceptor.sessions["CLIENT"].next_in == 11


def test_a_resend_request_resends_application_messages_with_poss_dup_and_gap_fills_admin_ones(
    client: RawClient,
) -> None:
    client.logon()  # acceptor seq 1: Logon
    client.send("D", new_order("R-1"))
    original = client.expect("8")  # acceptor seq 2
    client.send("1", [(112, "X")])
    client.expect("0", skip=())  # acceptor seq 3: Heartbeat
    client.send("D", new_order("R-2"))
    client.expect("8")  # acceptor seq 4
    client.send("2", [(7, "1"), (16, "0")])
    gap = client.expect("4", skip=())
    assert (gap.seq, gap[123], gap[36], gap[43]) == (1, "Y", "2", "Y")
    resent = client.expect("8", skip=())
    assert (resent.seq, resent[43], resent[11]) == (2, "Y", "R-1")
    assert resent[122] == original[52] and resent[17] == original[17]
    gap = client.expect("4", skip=())
    assert (gap.seq, gap[36]) == (3, "4")
    assert client.expect("8", skip=())[11] == "R-2"


def test_a_too_low_sequence_number_without_poss_dup_is_logged_out(client: RawClient) -> None:
    client.logon()
    client.send("1", [(112, "A")])
    client.expect("0")
    client.send("1", [(112, "B")], seq=2)
    logout = client.expect("5")
    assert "too low" in logout[58]
    assert client.closed_by_peer()


def test_a_too_low_sequence_number_with_poss_dup_is_ignored(client: RawClient) -> None:
    client.logon()
    client.send("1", [(112, "A")])
    client.expect("0")
    client.send("1", [(112, "DUP")], seq=2, poss_dup=True)
    client.send("1", [(112, "NEXT")])
    assert client.expect("0", skip=())[112] == "NEXT"


def test_garbled_messages_are_ignored_and_use_no_sequence_number(client: RawClient) -> None:
    client.logon()
    good_form = client.encode("1", [(112, "BAD")], seq=2)
    bad_checksum = good_form[:-4] + b"%03d\x01" % ((int(good_form[-4:-1]) + 1) % 256)
    short = client.encode("1", [(112, "SHORT")], seq=2).replace(b"\x019=", b"\x019=1", 1)
    client.send_raw(bad_checksum + short)
    client.send("1", [(112, "GOOD")], seq=2)
    client.seq = 3
    assert client.expect("0", skip=())[112] == "GOOD"


def test_a_logon_with_an_unknown_comp_id_is_refused(connect: Callable[..., RawClient]) -> None:
    stranger = connect(sender="STRANGER")
    stranger.send("A", [(98, "0"), (108, "30")])
    assert stranger.closed_by_peer()
    assert not any(m.type == "A" for m in stranger.inbox)


def test_a_message_with_a_wrong_comp_id_after_logon_is_rejected_and_logged_out(client: RawClient) -> None:
    client.logon()
    client.send("1", [(112, "X")], sender="OTHER")
    reject = client.expect("3")
    assert reject[373] == "9"
    assert client.expect("5", skip=())
    assert client.closed_by_peer()


def test_a_first_message_that_is_not_a_logon_is_disconnected(client: RawClient) -> None:
    client.send("1", [(112, "X")])
    assert client.closed_by_peer()
    assert client.inbox == []


def test_a_second_connection_for_a_logged_on_session_is_refused(
    client: RawClient, connect: Callable[..., RawClient]
) -> None:
    client.logon()
    twin = connect()
    twin.send("A", [(98, "0"), (108, "30")])
    assert twin.closed_by_peer() and twin.inbox == []
    client.send("1", [(112, "still-here")])
    assert client.expect("0")[112] == "still-here"


def test_reset_seq_num_flag_on_logon_resets_both_numbers(client: RawClient, connect: Callable[..., RawClient]) -> None:
    client.logon()
    client.send("1", [(112, "X")])
    client.expect("0")
    client.send("5", [])
    client.expect("5")
    assert client.closed_by_peer()
    again = connect()
    reply = again.logon(reset=True)
    assert reply.seq == 1 and reply[141] == "Y"
    again.send("1", [(112, "Y")])
    assert again.expect("0").seq == 2


def test_a_logon_after_a_reconnect_continues_the_numbers_and_a_gap_asks_for_a_resend(
    client: RawClient, connect: Callable[..., RawClient]
) -> None:
    client.logon()
    client.send("5", [])
    client.expect("5")
    assert client.closed_by_peer()
    again = connect(seq=5)  # this client lost 3 and 4
    reply = again.logon()
    assert reply.seq == 3
    assert again.expect("2")[7] == "3"


def test_logout_is_answered_with_logout_and_the_connection_closed(client: RawClient) -> None:
    client.logon()
    client.send("5", [(58, "bye")])
    assert client.expect("5")
    assert client.closed_by_peer()


def test_a_missing_required_tag_gets_a_session_reject_and_the_session_stays_up(client: RawClient) -> None:
    client.logon()
    client.send("D", [(11, "X"), (55, "INFY"), (38, "1"), (40, "2"), (60, "20260105-09:15:00")])  # no 54
    reject = client.expect("3")
    assert (reject[373], reject[371], reject[372], reject[45]) == ("1", "54", "D", "2")
    client.send("1", [(112, "alive")])
    assert client.expect("0")[112] == "alive"
