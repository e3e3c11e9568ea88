"""FIX 4.4 tag and value names, for showing messages to people (the decoded journal).

Pure core (no I/O). What ``oms.fix.mapping.TABLE`` names already -- the order fields, the
requests (35), ExecType (150), OrdStatus (39), Side (54), OrdType (40) and the reject reasons
-- is taken from it; this module adds only the session and header tags the mapping does
not cover, so no FIX name is written twice.
"""

from __future__ import annotations

from oms.fix.mapping import TABLE

_SESSION_TAGS: dict[int, str] = {
    7: "BeginSeqNo",
    8: "BeginString",
    9: "BodyLength",
    10: "CheckSum",
    16: "EndSeqNo",
    17: "ExecID",
    34: "MsgSeqNum",
    35: "MsgType",
    36: "NewSeqNo",
    39: "OrdStatus",
    41: "OrigClOrdID",
    43: "PossDupFlag",
    45: "RefSeqNum",
    49: "SenderCompID",
    52: "SendingTime",
    56: "TargetCompID",
    97: "PossResend",
    98: "EncryptMethod",
    102: "CxlRejReason",
    103: "OrdRejReason",
    108: "HeartBtInt",
    112: "TestReqID",
    122: "OrigSendingTime",
    123: "GapFillFlag",
    141: "ResetSeqNumFlag",
    150: "ExecType",
    151: "LeavesQty",
    371: "RefTagID",
    372: "RefMsgType",
    373: "SessionRejectReason",
    380: "BusinessRejectReason",
    434: "CxlRejResponseTo",
    790: "OrdStatusReqID",
}

TAG_NAMES: dict[int, str] = {
    **_SESSION_TAGS,
    **{row.tag: row.name for row in TABLE if row.kind == "field"},
}
"""Tag number -> FIX 4.4 field name."""

MSG_TYPE_NAMES: dict[str, str] = {
    "0": "Heartbeat",
    "1": "TestRequest",
    "2": "ResendRequest",
    "3": "Reject",
    "4": "SequenceReset",
    "5": "Logout",
    "8": "ExecutionReport",
    "9": "OrderCancelReject",
    "A": "Logon",
    "j": "BusinessMessageReject",
    **{row.value: row.name for row in TABLE if row.kind == "request"},
}
"""MsgType (35) value -> message name."""

VALUE_NAMES: dict[tuple[int, str], str] = {
    **{(35, value): name for value, name in MSG_TYPE_NAMES.items()},
    **{(row.tag, row.value): row.name for row in TABLE if row.kind not in ("field", "request")},
}
"""``(tag, value)`` -> the value's name where FIX enumerates it (``(150, "F")`` -> Trade)."""


def tag_name(tag: int) -> str:
    """The FIX 4.4 name of ``tag`` (``"Tag 9999"`` when this face does not know it)."""
    return TAG_NAMES.get(tag, f"Tag {tag}")


def msg_type_name(msg_type: str) -> str:
    """The name of a MsgType (35) value (the value itself when unknown)."""
    return MSG_TYPE_NAMES.get(msg_type, msg_type)


def value_name(tag: int, value: str) -> str:
    """The name of an enumerated value (``""`` when the tag is not enumerated or the value unknown)."""
    return VALUE_NAMES.get((tag, value), "")
