"""``fix``: one check of a FIX 4.4 face, driven message by message on a session of its own
(the ``fix`` face). Each check is written against a rule of DESIGN.md's "FIX 4.4 face" or of
FIX 4.4's session layer, which DESIGN.md says wins where it is silent:

    logon            Logon answered with Logon: 98=0, our 108, 141=Y echoed, MsgSeqNum 1 after the reset
    test_request     TestRequest 112=X answered by a Heartbeat 112=X
    sequence_gap     a MsgSeqNum too high -> ResendRequest from the expected one; after our
                     SequenceReset-GapFill the session goes on
    sequence_low     a MsgSeqNum too low without PossDupFlag -> Logout (and nothing else answered)
    resend           ResendRequest 7=1 16=0 -> every application message again with 43=Y and 122,
                     the same ExecIDs; session messages gap-filled (123=Y), never sent again
    garbled          a wrong CheckSum is ignored: no answer, no Reject, no Logout, its number unused
    unknown_type     a well-formed message of a type that does not exist -> 35=3 or 35=j with 45
                     and 372, and the session stays up
    missing_tag      a NewOrderSingle without Symbol (55) -> refused (35=3 / 35=j with 45, or 150=8)
                     and the session stays up
    name_by_37       a replace naming the order by OrderID (37) alone is accepted (150=5 39=0)
    name_by_41       a cancel naming the order by OrigClOrdID (41) alone, the latest accepted
                     ClOrdID, is accepted (150=4 39=4)
    status           OrderStatusRequest -> 150=I with the order's 37 and 39
    restart_resume   after a graceful restart, a Logon without reset goes on with both
                     sequences where they were (restart)
    crash_resume     the same after kill -9 (crash); a ResendRequest for the last message is
                     allowed there (FIX recovery), one from the session's start is not
    fill_report      an execute through the HTTP face sends 150=F 39=2 with 31/32/14/151/6 to
                     the session that entered the order (core, raw_http)
    other_face       a modify and a cancel through the HTTP face send the unsolicited 150=5 and
                     150=4 to that session (core, raw_http)
    offline_reports  a cancel through the HTTP face while the session is logged out reaches it
                     after its next Logon (sent, or on its ResendRequest) (core, raw_http)
    logout           a Logout answered with a Logout
    foreign_logon    a Logon from a SenderCompID not configured is not accepted
    possdup_ignored  a PossDup copy of a message processed already is ignored
    clordid_reuse    a replace whose new ClOrdID was used before is refused
    heartbeat        with HeartBtInt 2, a Heartbeat (or TestRequest) of its own within 6 s of quiet
    http_orders_silent  orders entered over HTTP are not reported to the FIX session (core, raw_http)
    cross_face_duplicate  a client order id used over HTTP is a duplicate ClOrdID over FIX (core, raw_http)

Every check also holds the system to what ``FixClient`` watches on each message: the header,
no MsgSeqNum jump (but at a Logon), the Logon answered first, no ExecID repeated without
PossDupFlag.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Literal

from oms.certification.fixwire import FixClient, FixContractViolation, FixSessionEnded, as_decimal
from oms.certification.steps._base import CaseRun, Spec, StepKind, register
from oms.certification.values import StepFailed
from oms.fix.codec import Field, Message, sending_time

QUIET_S = 1.5
"""How long 'no answer' is watched for (a garbled message, a too-low MsgSeqNum)."""

Check = Callable[[CaseRun, FixClient], str]
CHECKS: dict[str, tuple[Check, frozenset[str], str]] = {}
"""name -> (the check, what it needs besides the fix face, what it expects)."""


def check(name: str, expects: str, needs: frozenset[str] = frozenset()) -> Callable[[Check], Check]:
    def add(fn: Check) -> Check:
        CHECKS[name] = (fn, needs, expects)
        return fn

    return add


class FixSpec(Spec):
    action: Literal["fix"]
    check: str

    def model_post_init(self, _: Any) -> None:
        if self.check not in CHECKS:
            raise ValueError(f"unknown FIX check {self.check!r}; expected one of {', '.join(CHECKS)}")


@register
class Fix(StepKind):
    names = ("fix",)
    Spec = FixSpec
    needs_text = "fix"

    def needs(self, spec: Any) -> set[str]:
        return {"fix"} | set(CHECKS[spec.check][1])

    def describe(self, spec: Any) -> str:
        return f"fix {spec.check}"

    def expected(self, spec: Any) -> str:
        return CHECKS[spec.check][2]

    def run(self, case: CaseRun, spec: Any) -> str:
        client = case.target.fix_client()
        try:
            out = CHECKS[spec.check][0](case, client)
            client.check()
        except FixSessionEnded as e:
            raise StepFailed(f"the session ended: {e}") from None
        except FixContractViolation as e:
            raise StepFailed(str(e)) from None
        finally:
            for direction, seq, msg_type, raw in client.journal.rows[-40:]:
                case.evidence("fix_session", [direction, f"{seq} 35={msg_type}", raw])
            client.logout()
        return out


# ---- helpers ---------------------------------------------------------------------------------


def _new_order(case: CaseRun, client: FixClient, tag: str, quantity: int = 10, price: str = "10") -> tuple[str, int]:
    """A NewOrderSingle of a LIMIT BUY; (its ClOrdID, the order id its 150=0 report gave)."""
    report = _entered(case, client, tag, quantity, price)
    return report[11], int(report[37])


def _entered(case: CaseRun, client: FixClient, tag: str, quantity: int = 10, price: str = "10") -> Message:
    """A NewOrderSingle of a LIMIT BUY, and its 150=0 report."""
    clordid = f"{case.runner.token}-{tag}"
    body: list[Field] = [(11, clordid), (55, "FIXS"), (54, "1"), (38, str(quantity)), (40, "2"), (44, price)]
    client.send("D", [*body, (60, sending_time())])
    report = client.wait(lambda m: m.msg_type == "8" and m.get(11) == clordid, f"NewOrderSingle 11={clordid}")
    if report.get(150) != "0" or not (report.get(37) or "").isdigit():
        raise StepFailed(f"NewOrderSingle 11={clordid} answered 150={report.get(150)} 37={report.get(37)}")
    return report


def _change(
    client: FixClient,
    msg_type: str,
    clordid: str,
    *,
    orig: str | None = None,
    order_id: int | None = None,
    quantity: str = "10",
) -> Message:
    """A replace (G, to ``quantity`` at 10) or a cancel (F) of a FIXS BUY naming the order by
    41 ``orig`` and/or 37 ``order_id``, and the 35=8 / 35=9 (or 35=3 / 35=j) answering it."""
    body: list[Field] = [(11, clordid)] + ([(41, orig)] if orig else []) + ([(37, str(order_id))] if order_id else [])
    body += [(55, "FIXS"), (54, "1"), (38, quantity)] + ([(40, "2"), (44, "10")] if msg_type == "G" else [])
    seq = client.send(msg_type, [*body, (60, sending_time())])
    return client.wait(
        lambda m: (
            m.get(43) != "Y"
            and (
                (m.msg_type in ("8", "9") and m.get(11) == clordid)
                or (m.msg_type in ("3", "j") and m.get(45) == str(seq))
            )
        ),
        f"35={msg_type} 11={clordid}" + (f" 41={orig}" if orig else "") + (f" 37={order_id}" if order_id else ""),
    )


def _alive(client: FixClient, token: str) -> None:
    """The session still answers: a TestRequest gets its Heartbeat."""
    client.send("1", [(112, token)])
    client.wait_admin(lambda m: m.msg_type == "0" and m.get(112) == token, f"TestRequest 112={token}")


def _report(client: FixClient, order_id: int, exec_type: str, what: str) -> Message:
    return client.wait(
        lambda m: m.msg_type == "8" and m.get(37) == str(order_id) and m.get(150) == exec_type, what, timeout=5.0
    )


def _http(case: CaseRun, method: str, path: str, body: Any = None, *, status: int = 200) -> Any:
    got, answer = case.target.http(method, path, json_body=body)
    if got != status:
        raise StepFailed(f"{method} {path} answered {got} (expected {status}): {json.dumps(answer)[:200]}")
    return answer


TEXT_TAGS = {37, 39}
"""Tags compared as text (OrderID, OrdStatus); the others as exact numbers."""


def _expect_tags(msg: Message, what: str, want: dict[int, str]) -> None:
    """Each tag as ``want`` says (TEXT_TAGS as text, the rest as exact numbers)."""
    wrong = [
        f"{t}={msg.get(t)}"
        for t, v in want.items()
        if (msg.get(t) != v if t in TEXT_TAGS else as_decimal(msg.get(t)) != Decimal(v))
    ]
    if wrong:
        expected = " ".join(f"{t}={v}" for t, v in want.items())
        raise StepFailed(f"{what}: {', '.join(wrong)} (expected {expected})")


# ---- the checks --------------------------------------------------------------------------------


@check("logon", "Logon answered: 35=A, 98=0, our HeartBtInt, 141=Y, MsgSeqNum 1")
def _logon(case: CaseRun, client: FixClient) -> str:
    reply = client.logon(reset=True)
    problems = [
        f"{tag}={reply.get(tag)}, expected {want}"
        for tag, want in ((98, "0"), (108, "30"), (141, "Y"), (34, "1"))
        if reply.get(tag) != want
    ]
    if problems:
        raise StepFailed("the Logon answer: " + "; ".join(problems))
    return "Logon answered (98=0, 108=30, 141=Y, 34=1)"


@check("test_request", "a Heartbeat with the TestRequest's 112")
def _test_request(case: CaseRun, client: FixClient) -> str:
    client.logon(reset=True)
    _alive(client, f"{case.runner.token}-TR")
    return "Heartbeat with 112 echoed"


@check("sequence_gap", "a ResendRequest from the expected MsgSeqNum; the session goes on after a gap fill")
def _sequence_gap(case: CaseRun, client: FixClient) -> str:
    client.logon(reset=True)
    expected = client.next_out
    client.send("1", [(112, "GAP")], seq=expected + 5)
    # the client answers the ResendRequest itself: a SequenceReset-GapFill to expected + 6
    request = client.wait_admin(lambda m: m.msg_type == "2", f"a MsgSeqNum {expected + 5} where {expected} was due")
    if request.get(7) != str(expected):
        raise StepFailed(f"ResendRequest BeginSeqNo (7) {request.get(7)}, expected {expected}")
    _alive(client, "AFTER-GAP")
    return f"ResendRequest 7={expected}; after the gap fill the session answers"


@check("sequence_low", "a Logout, and no answer to the message")
def _sequence_low(case: CaseRun, client: FixClient) -> str:
    client.logon(reset=True)
    _alive(client, "BEFORE")
    used = client.next_out - 1
    client.send("1", [(112, "LOW")], seq=used)
    with contextlib.suppress(FixContractViolation):
        client.wait_admin(lambda m: m.msg_type == "5", "a too-low MsgSeqNum", timeout=QUIET_S * 2)
        answered = [m for m in client.admin if m.msg_type == "0" and m.get(112) == "LOW"]
        if answered:
            raise StepFailed(f"a TestRequest with the used MsgSeqNum {used} was answered")
        return f"Logout after MsgSeqNum {used} came again"
    if client.ended:
        return f"disconnected after MsgSeqNum {used} came again (no Logout)"
    raise StepFailed(f"MsgSeqNum {used} (already used, no PossDupFlag) did not end the session with a Logout")


HEADER = {8, 9, 10, 34, 43, 49, 52, 56, 97, 122}
"""What a resent message may change: its header (PossDupFlag, OrigSendingTime, SendingTime)."""


def _originals(client: FixClient) -> dict[int, list[tuple[str, str]]]:
    """The messages the system sent, as first received: MsgSeqNum -> tag=value pairs."""
    out: dict[int, list[tuple[str, str]]] = {}
    for direction, seq, _, raw in client.journal.rows:
        pairs = [tuple(p.split("=", 1)) for p in raw.strip("|").split("|") if "=" in p]
        if direction == "received" and seq.isdigit() and ("43", "Y") not in pairs:
            out.setdefault(int(seq), pairs)  # type: ignore[arg-type]
    return out


def _resent(
    client: FixClient, begin: int, end: int, seconds: float, *, open_ended: bool = False
) -> tuple[list[Message], set[int], list[str]]:
    """Resent messages and gap fills answering a ResendRequest for ``begin``..``end`` (or on,
    ``open_ended``: 16=0): (the resent application messages, the numbers covered, what they
    break)."""
    covered: set[int] = set()
    resent: list[Message] = []
    problems: list[str] = []
    fills: list[tuple[int, int]] = []

    def whole() -> Message | None:
        for m in [*client.inbox, *client.admin]:
            if m.get(43) != "Y" and m.msg_type != "4":
                continue
            seq = int(m.get(34) or 0)
            if m.msg_type == "4" and m.get(123) == "Y":
                new_seq = int(m.get(36) or seq)
                if new_seq <= seq or (new_seq > end + 1 and not open_ended):
                    problems.append(f"GapFill at {seq} with NewSeqNo {new_seq} (the range asked for ends at {end})")
                covered.update(range(seq, new_seq))
                fills.append((seq, new_seq))
            else:
                covered.add(seq)
                resent.append(m)
        client.inbox[:] = [m for m in client.inbox if m.get(43) != "Y"]
        client.admin[:] = [m for m in client.admin if m.get(43) != "Y" and m.msg_type != "4"]
        return Message([]) if set(range(begin, end + 1)) <= covered else None

    client._pump(whole, seconds)
    client.drain(0.3)  # anything beyond the range would come now
    whole()
    originals = _originals(client)
    beyond = sorted(n for n in covered if (n > end and not open_ended) or n < begin)
    if beyond:
        problems.append(f"resent or gap-filled {', '.join(map(str, beyond))}, outside {begin}-{end}")
    for m in resent:
        seq = int(m.get(34) or 0)
        first = originals.get(seq)
        if m.msg_type in ADMIN_TYPES:
            problems.append(f"{_name(m)} resent (a session message is gap-filled)")
        elif first is not None:
            sent_at = next((v for t, v in first if t == "52"), None)
            if m.get(122) != sent_at:
                problems.append(f"{_name(m)} resent with OrigSendingTime {m.get(122)}, first sent at {sent_at}")
            body = [(t, v) for t, v in first if int(t) not in HEADER]
            again = [(str(t), v) for t, v in m.fields if t not in HEADER]
            if body != again:
                problems.append(f"{_name(m)} resent with another content than first sent")
    for seq, new_seq in fills:
        over = [n for n in range(seq, new_seq) if dict(originals.get(n, [])).get("35") not in (None, *ADMIN_TYPES)]
        if over:
            problems.append(f"GapFill {seq}-{new_seq - 1} covers application message(s) {', '.join(map(str, over))}")
    again_seqs = {int(x.get(34) or 0) for x in resent}
    skipped = [
        n
        for n, pairs in originals.items()
        if begin <= n <= end and n not in again_seqs and dict(pairs).get("35") not in ADMIN_TYPES
    ]
    if skipped:
        problems.append(f"application messages {', '.join(map(str, skipped))} gap-filled instead of resent")
    return resent, covered, problems


ADMIN_TYPES = {"0", "1", "2", "4", "5", "A"}


@check(
    "resend",
    "each application message again (43=Y, 122 = its SendingTime, same content), session ones gap-filled; a range kept",
)
def _resend(case: CaseRun, client: FixClient) -> str:
    client.logon(reset=True)
    clordid, order_id = _new_order(case, client, "FX-RESEND")
    # the order moves on: its first report must still come again as it was
    _change(client, "F", f"{clordid}-C", orig=clordid, order_id=order_id)
    last = client.next_in - 1
    report_seq = max(n for n, pairs in _originals(client).items() if dict(pairs).get("35") == "8")
    client.send("2", [(7, "1"), (16, "0")])
    resent, covered, problems = _resent(client, 1, last, 5.0, open_ended=True)
    missing = sorted(set(range(1, last + 1)) - covered)
    if missing:
        problems.append(f"MsgSeqNum {', '.join(map(str, missing))} neither resent nor gap-filled")
    due = client.next_in  # a gap fill's NewSeqNo must be the number that comes next
    client.send("1", [(112, "AFTER-RESEND")])
    beat = client.wait_admin(lambda m: m.msg_type == "0" and m.get(112) == "AFTER-RESEND", "TestRequest AFTER-RESEND")
    if int(beat.get(34) or 0) < due:
        problems.append(f"the gap fill promised MsgSeqNum {due} next, but the next message came with {beat.get(34)}")
    if not [m for m in resent if m.msg_type == "8" and m.get(37) == str(order_id)]:
        problems.append(f"the ExecutionReport of order {order_id} did not come again")
    client.send("2", [(7, str(report_seq)), (16, str(report_seq))])  # a range: just the report
    again, covered_again, more = _resent(client, report_seq, report_seq, 5.0)
    problems += more
    if [int(m.get(34) or 0) for m in again] != [report_seq]:
        problems.append(f"ResendRequest 7={report_seq} 16={report_seq} answered with {sorted(covered_again)}")
    if problems:
        raise StepFailed("; ".join(problems))
    return f"MsgSeqNum 1-{last}: the report resent as first sent, the rest gap-filled; 7=16={report_seq} kept"


@check("garbled", "no answer to either; the session goes on and their MsgSeqNum is still free")
def _garbled(case: CaseRun, client: FixClient) -> str:
    client.logon(reset=True)
    for how in ("checksum", "body_length"):
        client.send("1", [(112, f"GARBLED-{how}")], garble=how)
        client.drain(QUIET_S)
        if client.ended:
            raise StepFailed(f"the session ended after a message with a bad {how} (FIX: ignore it)")
        # a Heartbeat of its own (no 112) may come at any time; an answer to the garbled one may not
        seen = [m for m in [*client.admin, *client.inbox] if m.msg_type in ("3", "5", "2") or m.get(112)]
        if seen:
            raise StepFailed(f"answered a bad {how} with {', '.join(_name(m) for m in seen)} (FIX: ignore it)")
        _alive(client, f"AFTER-{how}")  # sent with the MsgSeqNum the garbled one had
    return "a bad CheckSum and a bad BodyLength ignored; the next message with the same MsgSeqNum answered"


@check("unknown_type", "35=3 or 35=j naming it (45, 372); the session stays up")
def _unknown_type(case: CaseRun, client: FixClient) -> str:
    client.logon(reset=True)
    seq = client.send("ZZ", [(58, "no such message type")])
    reject = client.wait(lambda m: m.msg_type in ("3", "j") and m.get(45) == str(seq), f"MsgType ZZ (MsgSeqNum {seq})")
    if reject.get(372) != "ZZ":
        raise StepFailed(f"{_name(reject)}: RefMsgType (372) {reject.get(372)}, expected ZZ")
    _alive(client, "AFTER-ZZ")
    return f"{_name(reject)} 45={seq}; the session answers after"


@check("missing_tag", "refused (35=3 / 35=j with 45, or 150=8 39=8); the session stays up")
def _missing_tag(case: CaseRun, client: FixClient) -> str:
    client.logon(reset=True)
    clordid = f"{case.runner.token}-FX-NOSYM"
    body: list[Field] = [(11, clordid), (54, "1"), (38, "1"), (40, "2"), (44, "1"), (60, sending_time())]
    seq = client.send("D", body)
    answer = client.wait(
        lambda m: (m.msg_type in ("3", "j") and m.get(45) == str(seq)) or (m.msg_type == "8" and m.get(11) == clordid),
        f"a NewOrderSingle without 55 (MsgSeqNum {seq})",
    )
    if answer.msg_type == "8" and (answer.get(150), answer.get(39)) != ("8", "8"):
        raise StepFailed(f"a NewOrderSingle without Symbol was accepted: 150={answer.get(150)} 37={answer.get(37)}")
    if answer.msg_type in ("3", "j") and answer.get(372) != "D":
        raise StepFailed(f"{_name(answer)}: RefMsgType (372) {answer.get(372)}, expected D (DESIGN.md: 45/372)")
    _alive(client, "AFTER-NOSYM")
    return f"refused with {_name(answer)}; the session answers after"


@check("name_by_37", "accepted: 150=5 39=0 with the new quantity")
def _name_by_37(case: CaseRun, client: FixClient) -> str:
    client.logon(reset=True)
    _, order_id = _new_order(case, client, "FX-BY37")
    reply = _change(client, "G", f"{case.runner.token}-FX-BY37-R", order_id=order_id, quantity="20")
    if (reply.msg_type, reply.get(150), reply.get(39), reply.get(38)) != ("8", "5", "0", "20"):
        raise StepFailed(f"{_name(reply)} 150={reply.get(150)} 39={reply.get(39)} 38={reply.get(38)} {reply.get(58)}")
    return f"order {order_id} replaced (named by 37 only)"


@check("name_by_41", "by 41 alone: a cancel accepted (150=4 39=4); after a replace its ClOrdID finds the order")
def _name_by_41(case: CaseRun, client: FixClient) -> str:
    client.logon(reset=True)
    first, order_id = _new_order(case, client, "FX-BY41")
    reply = _change(client, "F", f"{case.runner.token}-FX-BY41-C", orig=first)
    if (reply.msg_type, reply.get(150), reply.get(39), reply.get(37)) != ("8", "4", "4", str(order_id)):
        raise StepFailed(f"{_name(reply)} 150={reply.get(150)} 39={reply.get(39)} 37={reply.get(37)} {reply.get(58)}")
    # the chain: after a replace, the order's latest accepted ClOrdID is the replace's
    a, other = _new_order(case, client, "FX-CHAIN")
    b = f"{case.runner.token}-FX-CHAIN-B"
    replaced = _change(client, "G", b, orig=a, order_id=other, quantity="20")
    if (replaced.msg_type, replaced.get(150)) != ("8", "5"):
        raise StepFailed(f"G 11={b} 41={a} answered {_name(replaced)} 150={replaced.get(150)} {replaced.get(58)}")
    refused = _change(client, "F", f"{case.runner.token}-FX-CHAIN-C", orig=b, quantity="20")
    # a MODIFIED order cannot be cancelled: refused as too late -- but found by its latest ClOrdID
    got = (refused.msg_type, refused.get(102), refused.get(37), refused.get(39))
    if got != ("9", "0", str(other), "0"):
        raise StepFailed(
            f"F naming order {other} by its latest ClOrdID {b}: 35={got[0]} 102={got[1]} 37={got[2]} 39={got[3]}; "
            f"expected 35=9 102=0 37={other} 39=0 (the order found, MODIFIED, too late to cancel)"
        )
    return f"order {order_id} cancelled by 41 alone; order {other} found by its latest ClOrdID after a replace"


def _status_of(client: FixClient, clordid: str, order_id: int, want: dict[int, str]) -> None:
    client.send("H", [(11, clordid), (37, str(order_id)), (55, "FIXS"), (54, "1")])
    reply = client.wait(
        lambda m: m.msg_type == "8" and m.get(150) == "I" and m.get(43) != "Y",
        f"OrderStatusRequest of order {order_id}",
    )
    _expect_tags(reply, f"150=I of order {order_id}", {37: str(order_id), **want})


@check("status", "150=I with the order's 37, its 39 and 14/151 -- new, replaced and cancelled")
def _status(case: CaseRun, client: FixClient) -> str:
    client.logon(reset=True)
    clordid, order_id = _new_order(case, client, "FX-STATUS")
    _status_of(client, clordid, order_id, {39: "0", 14: "0", 151: "10"})
    replaced = f"{clordid}-R"
    _change(client, "G", replaced, orig=clordid, order_id=order_id, quantity="12")
    _status_of(client, replaced, order_id, {39: "0", 14: "0", 151: "12"})
    other_clordid, other = _new_order(case, client, "FX-STATUS-C")
    cancel = f"{other_clordid}-C"
    _change(client, "F", cancel, orig=other_clordid, order_id=other)
    _status_of(client, cancel, other, {39: "4", 14: "0", 151: "0"})
    return f"150=I: order {order_id} 39=0 (new, then replaced to 12), order {other} 39=4 151=0"


def _resume(case: CaseRun, client: FixClient, fault: Callable[[], None], how: str, *, graceful: bool) -> str:
    """A graceful stop has time to keep every number: no ResendRequest after it. After kill -9
    a system may have lost the last message it processed and ask for it again (FIX's
    recovery; the client gap-fills it) -- but never from the start of the session."""
    client.logon(reset=True)
    entered = _entered(case, client, f"FX-RESUME-{'R' if graceful else 'K'}")
    order_id, report_seq, exec_id = int(entered[37]), int(entered[34]), entered.get(17)
    _alive(client, "BEFORE")
    ours, theirs = client.next_out, client.next_in
    client.close()  # no Logout: the session is interrupted, not ended
    fault()
    again = case.target.fix_client()
    again.next_in = theirs
    try:
        reply = again.logon(reset=False, seq=ours)
        seq = int(reply.get(34) or 0)
        if seq < theirs:  # higher is fine: a Logout it stored on the way down, gap-filled on request
            raise StepFailed(f"after {how} the Logon answer has MsgSeqNum {seq}; the session had reached {theirs}")
        again.drain(0.3)
        asked = [int(m.get(7) or 0) for m in again.admin if m.msg_type == "2"]
        if asked and (graceful or min(asked) <= 1):
            raise StepFailed(f"after {how} the system asked for MsgSeqNum {min(asked)} on: it lost ours ({ours})")
        _alive(again, "AFTER")  # answered after whatever our own ResendRequest at the Logon brought
        again.inbox[:] = [m for m in again.inbox if m.get(43) != "Y"]
        again.admin[:] = [m for m in again.admin if m.get(43) != "Y" and m.msg_type != "4"]
        # DESIGN.md: sent messages are persisted too, "so ... ResendRequest works"
        again.send("2", [(7, str(report_seq)), (16, str(report_seq))])
        resent, _, problems = _resent(again, report_seq, report_seq, 5.0)
        if [(m.get(37), m.get(17)) for m in resent] != [(str(order_id), exec_id)]:
            problems.append(f"the report of order {order_id} (MsgSeqNum {report_seq}, ExecID {exec_id}) was not resent")
        if problems:
            raise StepFailed(f"after {how}, a ResendRequest: " + "; ".join(problems))
        again.check()
    finally:
        again.logout()
    return f"after {how} both sequences went on (ours {ours}, theirs {theirs}) and MsgSeqNum {report_seq} was resent"


@check("restart_resume", "both sequence numbers go on where they were", frozenset({"restart"}))
def _restart_resume(case: CaseRun, client: FixClient) -> str:
    return _resume(case, client, case.target.restart, "a restart", graceful=True)


@check("crash_resume", "both sequence numbers go on where they were", frozenset({"crash"}))
def _crash_resume(case: CaseRun, client: FixClient) -> str:
    return _resume(case, client, case.target.kill_and_start, "kill -9", graceful=False)


OTHER_FACE = frozenset({"core", "execute", "raw_http"})


@check("fill_report", "150=F 39=2 with 31 LastPx, 32 LastQty, 14, 151=0, 6", OTHER_FACE)
def _fill_report(case: CaseRun, client: FixClient) -> str:
    client.logon(reset=True)
    _, order_id = _new_order(case, client, "FX-FILL", quantity=7, price="12.5")
    _http(case, "POST", f"/order/{order_id}/execute", {"price": 12})
    fill = _report(client, order_id, "F", f"the fill of order {order_id}, executed over HTTP")
    _expect_tags(fill, f"the fill report of order {order_id}", {39: "2", 31: "12", 32: "7", 14: "7", 151: "0", 6: "12"})
    return f"150=F 39=2 31=12 32=7 14=7 151=0 6=12 for order {order_id}"


@check("other_face", "150=5 39=0 with the new quantity, then 150=4 39=4", OTHER_FACE)
def _other_face(case: CaseRun, client: FixClient) -> str:
    client.logon(reset=True)
    _, order_id = _new_order(case, client, "FX-OTHER-M")
    _, other_id = _new_order(case, client, "FX-OTHER-C")
    _http(case, "PUT", f"/order/{order_id}", {"quantity": 15, "price": 9.5})
    modified = _report(client, order_id, "5", f"the replace of order {order_id} made over HTTP")
    _expect_tags(modified, f"150=5 of order {order_id}", {39: "0", 38: "15", 44: "9.5", 14: "0", 151: "15", 6: "0"})
    _http(case, "DELETE", f"/order/{other_id}")
    cancelled = _report(client, other_id, "4", f"the cancel of order {other_id} made over HTTP")
    _expect_tags(cancelled, f"150=4 of order {other_id}", {39: "4", 14: "0", 151: "0", 6: "0"})
    return f"order {order_id}: 150=5 39=0 38=15 44=9.5 151=15; order {other_id}: 150=4 39=4 151=0"


@check("offline_reports", "the 150=4 reaches the session after its next Logon", frozenset({"core", "raw_http"}))
def _offline_reports(case: CaseRun, client: FixClient) -> str:
    client.logon(reset=True)
    _, order_id = _new_order(case, client, "FX-OFFLINE")
    client.send("5", [(58, "back soon")])
    with contextlib.suppress(FixContractViolation):
        client.wait_admin(lambda m: m.msg_type == "5", "the Logout", timeout=3.0)
    ours, theirs = client.next_out, client.next_in
    client.close()
    _http(case, "DELETE", f"/order/{order_id}")
    again = case.target.fix_client()
    again.next_in = theirs
    try:
        again.logon(reset=False, seq=ours)
        report = _report(again, order_id, "4", f"the cancel of order {order_id} made while logged out")
        if report.get(39) != "4":
            raise StepFailed(f"150=4 with 39={report.get(39)}, expected 39=4")
        again.drain(QUIET_S)  # once, not twice
        again.check()
    finally:
        again.logout()
    how = "on our ResendRequest" if report.get(43) == "Y" else "after the Logon"
    return f"the cancel of order {order_id} arrived {how}"


@check("logout", "a Logout answered with a Logout")
def _logout(case: CaseRun, client: FixClient) -> str:
    client.logon(reset=True)
    client.send("5", [(58, "certification: logout")])
    client.wait_admin(lambda m: m.msg_type == "5", "our Logout (FIX: a Logout is answered with a Logout)")
    return "Logout answered with Logout"


@check("foreign_logon", "no Logon answer (a Logout, a Reject or a disconnect)")
def _foreign_logon(case: CaseRun, client: FixClient) -> str:
    client.close()
    stranger = FixClient(client.host, client.port, sender="CERT-INTRUDER", target=client.target, timeout=3.0)
    try:
        with contextlib.suppress(FixSessionEnded, FixContractViolation):
            stranger.logon(reset=True)
    finally:
        stranger.close()
    answered = [
        raw for direction, _, msg_type, raw in stranger.journal.rows if direction == "received" and msg_type == "A"
    ]
    if answered:
        raise StepFailed(f"a Logon from SenderCompID CERT-INTRUDER was answered with a Logon: {answered[0]}")
    return "a Logon from an unknown SenderCompID was not accepted"


@check("possdup_ignored", "no answer, no order: a PossDup copy of a message processed already is ignored")
def _possdup_ignored(case: CaseRun, client: FixClient) -> str:
    client.logon(reset=True)
    entered = _entered(case, client, "FX-POSSDUP")
    seq = next(int(s) for d, s, t, raw in client.journal.rows if d == "sent" and t == "D" and entered[11] in raw)
    body: list[Field] = [(11, entered[11]), (55, "FIXS"), (54, "1"), (38, "10"), (40, "2"), (44, "10")]
    client.send("D", [*body, (60, sending_time())], seq=seq, poss_dup=True)
    client.drain(QUIET_S)
    answered = [m for m in client.inbox if m.msg_type in ("8", "3", "j") and m.get(43) != "Y"]
    if answered:
        raise StepFailed(f"a PossDup copy of MsgSeqNum {seq} (processed already) was answered: {_name(answered[0])}")
    _alive(client, "AFTER-POSSDUP")
    return f"the PossDup copy of MsgSeqNum {seq} was ignored"


@check("clordid_reuse", "a replace whose new ClOrdID is one used before is refused (35=9)")
def _clordid_reuse(case: CaseRun, client: FixClient) -> str:
    client.logon(reset=True)
    first, order_id = _new_order(case, client, "FX-REUSE")
    reply = _change(client, "G", first, orig=first, order_id=order_id, quantity="11")
    if reply.msg_type == "8":
        raise StepFailed(f"a replace with the used ClOrdID {first} as its new 11 was accepted: 150={reply.get(150)}")
    return f"refused with {_name(reply)}"


@check("heartbeat", "with HeartBtInt 2, the system's Heartbeat or TestRequest within 3 intervals of quiet")
def _heartbeat(case: CaseRun, client: FixClient) -> str:
    client.logon(reset=True, heartbeat=2)
    beat = client.wait_admin(lambda m: m.msg_type in ("0", "1") and not m.get(112), "six seconds of quiet", timeout=6.0)
    return f"{_name(beat)} after quiet"


HTTP_FACE = frozenset({"core", "raw_http"})


@check("http_orders_silent", "nothing on the FIX session about orders another face entered", HTTP_FACE)
def _http_orders_silent(case: CaseRun, client: FixClient) -> str:
    client.logon(reset=True)
    made = _http(case, "POST", "/order", {"symbol": "FIXS", "side": "BUY", "quantity": 3, "price": 4}, status=201)
    order_id = made["order_id"]
    _http(case, "PUT", f"/order/{order_id}", {"quantity": 4})
    client.drain(QUIET_S)
    told = [m for m in client.inbox if m.msg_type == "8" and m.get(37) == str(order_id)]
    if told:
        raise StepFailed(f"order {order_id}, entered over HTTP, was reported to this FIX session: {_name(told[0])}")
    return f"order {order_id} (entered over HTTP) not reported on FIX"


@check("cross_face_duplicate", "150=8 103=6: a ClOrdID used over HTTP is a duplicate over FIX", HTTP_FACE)
def _cross_face_duplicate(case: CaseRun, client: FixClient) -> str:
    client.logon(reset=True)
    clordid = f"{case.runner.token}-FX-XFACE"
    order = {"symbol": "FIXS", "side": "BUY", "quantity": 3, "price": 4, "client_order_id": clordid}
    _http(case, "POST", "/order", order, status=201)
    client.send("D", [(11, clordid), (55, "FIXS"), (54, "1"), (38, "3"), (40, "2"), (44, "4"), (60, sending_time())])
    reply = client.wait(lambda m: m.msg_type == "8" and m.get(11) == clordid, f"NewOrderSingle 11={clordid}")
    if (reply.get(150), reply.get(103)) != ("8", "6"):
        raise StepFailed(f"a ClOrdID used over HTTP answered 150={reply.get(150)} 103={reply.get(103)} over FIX")
    return "refused as a duplicate (150=8 103=6)"


def _name(msg: Message) -> str:
    return f"35={msg.msg_type} (MsgSeqNum {msg.get(34)})"
