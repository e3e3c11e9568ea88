"""The FIX gateway's journal: every message it sent and received, raw and decoded.

Pure apart from pandas, which only the ``*_frame`` functions import (lazily). ``Journal``
keeps the newest ``maxlen`` messages of a connection (bounded: a long session cannot grow
it without end) and answers which of them belong to one order (``records(order_id)``): a
message carrying OrderID (37) belongs to that order; a request we sent (D, G, F, H) belongs
to the order of the report that answered it -- matched by ClOrdID (11), or OrdStatusReqID
(790) for a status request -- so a refused NewOrderSingle (answered with 37=NONE) belongs
to no order, even when its ClOrdID is that of an existing one.

The frames are for analysts: ``raw_frame`` (tag=value, ``|`` for SOH), ``summary_frame``
(one row per message, the order fields by FIX name), ``decoded_frame`` (one message, tag by
tag, enumerated values named) and ``beside_audit`` (each audit event of the order next to
the ExecutionReport that reported it: ExecID 17 is ``<order_id>-<version>``).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from oms.fix.codec import SOH, Field, parse_pairs
from oms.fix.tags import msg_type_name, tag_name, value_name

if TYPE_CHECKING:
    import pandas as pd

    from oms.model import OrderEvent

SENT = "sent"
RECEIVED = "received"
ARROWS = {SENT: "→ sent", RECEIVED: "← received"}
JOURNAL_SIZE = 10_000
"""Messages a gateway keeps by default (the oldest go first)."""
REQUESTS = frozenset("DGFH")
"""The order requests we send; each is answered by a report (8) or a cancel reject (9)."""
SUMMARY_TAGS = (11, 41, 37, 150, 39, 38, 44, 32, 31, 14, 151, 6, 17, 60, 34, 52, 58)
"""The tags ``summary_frame`` shows, one column each, in this order: what the order is and
what happened to it first, then the ids and the session's stamps."""
ENUMERATED = frozenset({39, 54, 40, 102, 103, 150, 434})


@dataclass(frozen=True, slots=True)
class Record:
    """One message as it went over the wire."""

    n: int
    """Its position in the journal, from 1."""
    direction: str
    """``sent`` or ``received``."""
    raw: bytes
    fields: tuple[Field, ...]

    def get(self, tag: int) -> str | None:
        return next((v for t, v in self.fields if t == tag), None)

    @property
    def msg_type(self) -> str:
        return self.get(35) or ""

    @property
    def msg_type_name(self) -> str:
        return msg_type_name(self.msg_type)

    @property
    def text(self) -> str:
        """The message as tag=value text with ``|`` for SOH (the trailing one dropped)."""
        return self.raw.decode("latin-1").rstrip(SOH.decode()).replace(SOH.decode(), "|")

    @property
    def order_id(self) -> int | None:
        """OrderID (37) when the message carries a number there."""
        value = self.get(37) or ""
        return int(value) if value.isdigit() else None

    def decoded(self) -> list[tuple[int, str, str, str]]:
        """``(tag, name, value, meaning)`` per field, in wire order; ``meaning`` names an
        enumerated value (``150=F`` -> ``Trade``) and is blank otherwise."""
        return [(t, tag_name(t), v, value_name(t, v)) for t, v in self.fields]


class Journal:
    """The newest ``maxlen`` messages of one connection, oldest first. Thread-safe."""

    def __init__(self, maxlen: int = JOURNAL_SIZE) -> None:
        if maxlen < 1:
            raise ValueError("a journal keeps at least one message")
        self.maxlen = maxlen
        self._records: deque[Record] = deque(maxlen=maxlen)
        self._count = 0
        self._lock = threading.Lock()

    def add(self, direction: str, frame: bytes) -> Record:
        """Record one whole frame ``sent`` or ``received``."""
        record_fields = tuple(parse_pairs(frame))
        with self._lock:
            self._count += 1
            record = Record(self._count, direction, bytes(frame), record_fields)
            self._records.append(record)
        return record

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

    def records(self, order_id: int | None = None) -> list[Record]:
        """Every message kept (``order_id`` None), or those of one order, oldest first."""
        with self._lock:
            kept = list(self._records)
        if order_id is None:
            return kept
        return [r for r, owner in zip(kept, owners(kept), strict=True) if owner == order_id]


def _reply_key(record: Record) -> str | None:
    return record.get(790) or record.get(11)


def answers(records: Sequence[Record]) -> dict[int, int]:
    """``{index of a reply: index of the request it answers}``: a request we sent (D, G, F,
    H) is answered by the first report (8) or cancel reject (9) received after it that
    carries its ClOrdID (11), or its OrdStatusReqID (790). A later report with the same
    ClOrdID (an unsolicited fill says which ClOrdID it concerns) answers nothing."""
    out: dict[int, int] = {}
    waiting: dict[str, int] = {}
    for index, record in enumerate(records):
        if record.direction == SENT and record.msg_type in REQUESTS:
            key = _reply_key(record)
            if key:
                waiting[key] = index
        elif record.direction == RECEIVED and record.msg_type in ("8", "9"):
            key = record.get(790) if record.get(790) in waiting else record.get(11)
            if key in waiting:
                out[index] = waiting.pop(key or "")
    return out


def owners(records: Sequence[Record]) -> list[int | None]:
    """The order each record belongs to (None: a session message, or no order): its
    OrderID (37); for a request we sent, the OrderID of the reply that answered it."""
    out: list[int | None] = [r.order_id for r in records]
    for reply, request in answers(records).items():
        out[request] = records[reply].order_id
    return out


# ---- frames for analysts ---------------------------------------------------------------


def _column(tag: int) -> str:
    return f"{tag_name(tag)} ({tag})"


def _shown(tag: int, value: str | None) -> str:
    if value is None:
        return ""
    name = value_name(tag, value) if tag in ENUMERATED else ""
    return f"{value} {name}" if name else value


def raw_text(records: Iterable[Record]) -> str:
    """One line per message: ``#n → sent D NewOrderSingle`` and its tag=value text."""
    return "\n".join(f"#{r.n} {ARROWS[r.direction]} {r.msg_type} {r.msg_type_name}\n    {r.text}" for r in records)


def raw_frame(records: Iterable[Record]) -> pd.DataFrame:
    """One row per message: ``#``, direction, MsgType, and the raw tag=value text."""
    import pandas as pd

    rows = [(r.n, ARROWS[r.direction], f"{r.msg_type} {r.msg_type_name}", r.text) for r in records]
    return pd.DataFrame(rows, columns=["#", "direction", "MsgType (35)", "tag=value (| is SOH)"])


def summary_frame(records: Iterable[Record], tags: Sequence[int] = SUMMARY_TAGS) -> pd.DataFrame:
    """One row per message, the order's fields by FIX name (enumerated values named, e.g.
    ``F Trade``); a tag no message carries gets no column."""
    import pandas as pd

    records = list(records)
    present = [t for t in tags if any(r.get(t) is not None for r in records)]
    rows = [
        [r.n, ARROWS[r.direction], f"{r.msg_type} {r.msg_type_name}"] + [_shown(t, r.get(t)) for t in present]
        for r in records
    ]
    return pd.DataFrame(rows, columns=["#", "direction", "MsgType (35)"] + [_column(t) for t in present])


def decoded_frame(record: Record) -> pd.DataFrame:
    """One message tag by tag: tag, FIX name, value, and the value's meaning."""
    import pandas as pd

    return pd.DataFrame(record.decoded(), columns=["tag", "name", "value", "meaning"])


def exec_id(order_id: int, version: int) -> str:
    """The ExecID (17) the acceptor gives the report of an order's ``version``."""
    return f"{order_id}-{version}"


def beside_audit(records: Iterable[Record], events: Iterable[OrderEvent]) -> pd.DataFrame:
    """Each audit event of an order next to the FIX report of it: an accepted event and the
    ExecutionReport whose ExecID (17) is ``<order_id>-<version>``, with the request we sent
    that it answered (blank for an unsolicited report: a fill, say). A refused command has no
    report. The report's TransactTime (60) is the event's time, in FIX's own format."""
    import pandas as pd

    records = list(records)
    reports = {r.get(17): r for r in records if r.direction == RECEIVED and r.msg_type == "8"}
    asked = {records[reply].n: records[request] for reply, request in answers(records).items()}
    rows: list[list[Any]] = []
    for event in events:
        report = None
        if event.accepted and event.order_id is not None and event.version is not None:
            report = reports.get(exec_id(event.order_id, event.version))
        row: list[Any] = [event.seq, event.action.value, event.accepted, event.at]
        if report is None:
            rows.append(row + [""] * 6)
            continue
        request = asked.get(report.n)
        asked_for = f"#{request.n} {request.msg_type} {request.msg_type_name}" if request is not None else ""
        rows.append([
            *row, asked_for, f"#{report.n}", report.get(17) or "", _shown(150, report.get(150)),
            _shown(39, report.get(39)), report.get(60) or "",
        ])  # fmt: skip
    columns = ["seq", "action", "accepted", "at", "FIX request", "report", "ExecID (17)", "ExecType (150)",
               "OrdStatus (39)", "TransactTime (60)"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)
