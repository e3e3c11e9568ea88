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
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Literal

from oms.certification.fixwire import FixClient, FixContractViolation, FixSessionEnded
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
    clordid = f"{case.runner.token}-{tag}"
    body: list[Field] = [(11, clordid), (55, "FIXS"), (54, "1"), (38, str(quantity)), (40, "2"), (44, price)]
    client.send("D", [*body, (60, sending_time())])
    report = client.wait(lambda m: m.msg_type == "8" and m.get(11) == clordid, f"NewOrderSingle 11={clordid}")
    if report.get(150) != "0" or not (report.get(37) or "").isdigit():
        raise StepFailed(f"NewOrderSingle 11={clordid} answered 150={report.get(150)} 37={report.get(37)}")
    return clordid, int(report[37])


def _alive(client: FixClient, token: str) -> None:
    """The session still answers: a TestRequest gets its Heartbeat."""
    client.send("1", [(112, token)])
    client.wait_admin(lambda m: m.msg_type == "0" and m.get(112) == token, f"TestRequest 112={token}")


def _report(client: FixClient, order_id: int, exec_type: str, what: str) -> Message:
    return client.wait(
        lambda m: m.msg_type == "8" and m.get(37) == str(order_id) and m.get(150) == exec_type, what, timeout=5.0
    )


def _http(case: CaseRun, method: str, path: str, body: Any = None) -> Any:
    status, answer = case.target.http(method, path, json_body=body)
    if status != 200:
        raise StepFailed(f"{method} {path} answered {status}: {json.dumps(answer)[:200]}")
    return answer


def _decimal(text: str | None) -> Decimal | None:
    try:
        return Decimal(text or "")
    except ArithmeticError:
        return None


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


@check("resend", "the application messages again with 43=Y and 122, same ExecIDs; session messages gap-filled")
def _resend(case: CaseRun, client: FixClient) -> str:
    client.logon(reset=True)
    _, order_id = _new_order(case, client, "FX-RESEND")
    first = [r for r in client.journal.rows if r[0] == "received" and r[2] == "8"]
    exec_ids = {_tag(raw, 17) for *_, raw in first}
    last = client.next_in - 1
    client.send("2", [(7, "1"), (16, "0")])
    covered: set[int] = set()
    resent: list[Message] = []

    def whole() -> Message | None:
        for m in [*client.inbox, *client.admin]:
            if m.get(43) != "Y" and m.msg_type != "4":
                continue
            seq = int(m.get(34) or 0)
            if m.msg_type == "4" and m.get(123) == "Y":
                covered.update(range(seq, int(m.get(36) or seq)))
            else:
                covered.add(seq)
                resent.append(m)
        client.inbox[:] = [m for m in client.inbox if m.get(43) != "Y"]
        client.admin[:] = [m for m in client.admin if m.get(43) != "Y" and m.msg_type != "4"]
        return Message([]) if set(range(1, last + 1)) <= covered else None

    client._pump(whole, 5.0)
    missing = sorted(set(range(1, last + 1)) - covered)
    if missing:
        raise StepFailed(f"MsgSeqNum {', '.join(map(str, missing))} neither resent nor gap-filled")
    problems = [f"{_name(m)} resent (a session message is gap-filled)" for m in resent if m.msg_type in ("A", "0", "1")]
    problems += [f"{_name(m)} resent without OrigSendingTime (122)" for m in resent if not m.get(122)]
    reports = [m for m in resent if m.msg_type == "8"]
    if not reports or {m.get(17) for m in reports} - exec_ids:
        problems.append(f"the ExecutionReports of order {order_id} did not come again with their ExecIDs")
    if problems:
        raise StepFailed("; ".join(problems))
    return f"MsgSeqNum 1-{last}: {len(reports)} report(s) resent with 43=Y, the rest gap-filled"


@check("garbled", "no answer to it; the session goes on and its MsgSeqNum is still free")
def _garbled(case: CaseRun, client: FixClient) -> str:
    client.logon(reset=True)
    client.send("1", [(112, "GARBLED")], garble=True)
    client.drain(QUIET_S)
    if client.ended:
        raise StepFailed("the session ended after a garbled message (FIX: ignore it)")
    seen = [m for m in [*client.admin, *client.inbox] if m.msg_type in ("0", "3", "5", "2")]
    if seen:
        raise StepFailed(f"answered a garbled message with {', '.join(_name(m) for m in seen)} (FIX: ignore it)")
    _alive(client, "AFTER-GARBLED")  # sent with the MsgSeqNum the garbled one had
    return "ignored; the next message with the same MsgSeqNum was answered"


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
    _alive(client, "AFTER-NOSYM")
    return f"refused with {_name(answer)}; the session answers after"


@check("name_by_37", "accepted: 150=5 39=0 with the new quantity")
def _name_by_37(case: CaseRun, client: FixClient) -> str:
    client.logon(reset=True)
    _, order_id = _new_order(case, client, "FX-BY37")
    clordid = f"{case.runner.token}-FX-BY37-R"
    body: list[Field] = [(11, clordid), (37, str(order_id)), (55, "FIXS"), (54, "1"), (38, "20"), (40, "2")]
    client.send("G", [*body, (44, "10"), (60, sending_time())])
    reply = client.wait(lambda m: m.msg_type in ("8", "9") and m.get(11) == clordid, f"G 11={clordid} by 37 alone")
    if (reply.msg_type, reply.get(150), reply.get(39), reply.get(38)) != ("8", "5", "0", "20"):
        raise StepFailed(f"{_name(reply)} 150={reply.get(150)} 39={reply.get(39)} 38={reply.get(38)} {reply.get(58)}")
    return f"order {order_id} replaced (named by 37 only)"


@check("name_by_41", "accepted: 150=4 39=4")
def _name_by_41(case: CaseRun, client: FixClient) -> str:
    client.logon(reset=True)
    first, order_id = _new_order(case, client, "FX-BY41")
    clordid = f"{case.runner.token}-FX-BY41-C"
    client.send("F", [(11, clordid), (41, first), (55, "FIXS"), (54, "1"), (38, "10"), (60, sending_time())])
    reply = client.wait(lambda m: m.msg_type in ("8", "9") and m.get(11) == clordid, f"F 11={clordid} by 41 alone")
    if (reply.msg_type, reply.get(150), reply.get(39), reply.get(37)) != ("8", "4", "4", str(order_id)):
        raise StepFailed(f"{_name(reply)} 150={reply.get(150)} 39={reply.get(39)} 37={reply.get(37)} {reply.get(58)}")
    return f"order {order_id} cancelled (named by 41 only)"


@check("status", "150=I with the order's 37 and 39=0")
def _status(case: CaseRun, client: FixClient) -> str:
    client.logon(reset=True)
    clordid, order_id = _new_order(case, client, "FX-STATUS")
    client.send("H", [(11, clordid), (37, str(order_id)), (55, "FIXS"), (54, "1")])
    reply = client.wait(lambda m: m.msg_type == "8" and m.get(150) == "I", f"OrderStatusRequest of order {order_id}")
    if (reply.get(37), reply.get(39)) != (str(order_id), "0"):
        raise StepFailed(f"150=I with 37={reply.get(37)} 39={reply.get(39)}, expected 37={order_id} 39=0")
    return f"150=I 37={order_id} 39=0"


def _resume(case: CaseRun, client: FixClient, fault: Callable[[], None], how: str, *, graceful: bool) -> str:
    """A graceful stop has time to keep every number: no ResendRequest after it. After kill -9
    a system may have lost the last message it processed and ask for it again (FIX's
    recovery; the client gap-fills it) -- but never from the start of the session."""
    client.logon(reset=True)
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
        _alive(again, "AFTER")
    finally:
        again.logout()
    return f"after {how} both sequences went on (ours {ours}, theirs {theirs})"


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
    want = {39: "2", 31: Decimal(12), 32: Decimal(7), 14: Decimal(7), 151: Decimal(0), 6: Decimal(12)}
    wrong = [f"{t}={fill.get(t)}" for t, v in want.items() if (fill.get(t) if t == 39 else _decimal(fill.get(t))) != v]
    if wrong:
        raise StepFailed(
            f"the fill report of order {order_id}: {', '.join(wrong)} (expected 39=2 31=12 32=7 14=7 151=0 6=12)"
        )
    return f"150=F 39=2 31=12 32=7 14=7 151=0 6=12 for order {order_id}"


@check("other_face", "150=5 39=0 with the new quantity, then 150=4 39=4", OTHER_FACE)
def _other_face(case: CaseRun, client: FixClient) -> str:
    client.logon(reset=True)
    _, order_id = _new_order(case, client, "FX-OTHER-M")
    _, other_id = _new_order(case, client, "FX-OTHER-C")
    _http(case, "PUT", f"/order/{order_id}", {"quantity": 15})
    modified = _report(client, order_id, "5", f"the replace of order {order_id} made over HTTP")
    if (modified.get(39), _decimal(modified.get(38))) != ("0", Decimal(15)):
        raise StepFailed(f"150=5 with 39={modified.get(39)} 38={modified.get(38)}, expected 39=0 38=15")
    _http(case, "DELETE", f"/order/{other_id}")
    cancelled = _report(client, other_id, "4", f"the cancel of order {other_id} made over HTTP")
    if cancelled.get(39) != "4":
        raise StepFailed(f"150=4 with 39={cancelled.get(39)}, expected 39=4")
    return f"order {order_id}: 150=5 39=0 38=15; order {other_id}: 150=4 39=4"


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
    finally:
        again.logout()
    how = "on our ResendRequest" if report.get(43) == "Y" else "after the Logon"
    return f"the cancel of order {order_id} arrived {how}"


def _name(msg: Message) -> str:
    return f"35={msg.msg_type} (MsgSeqNum {msg.get(34)})"


def _tag(raw: str, tag: int) -> str | None:
    prefix = f"|{tag}="
    at = raw.find(prefix)
    return raw[at + len(prefix) :].split("|", 1)[0] if at >= 0 else None
