"""Persisted FIX session state: sequence numbers, every message sent, reports waiting for a
logged-out session, and which session entered which order under which ClOrdID.

Adapter layer (sqlite3, standard library). ``SessionStore`` is the protocol the session
layer and the acceptor use; ``SqliteSessionStore`` keeps it in a file beside the DuckDB
database, ``<db>.fix.sqlite`` (``:memory:`` for an in-memory engine). DuckDB allows one
writer process, and the engine's store owns that file; a second small file keeps the FIX
face independent of it. Every ``commit`` is on disk (synchronous=FULL) before the messages
it records are written to the socket, so a restart -- or a kill -9 -- resumes the session
with the right numbers and a ResendRequest finds every message sent. Commits of several
sessions that arrive together are group-committed: one transaction, one fsync.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from typing import Protocol

from oms.fix.codec import Field

MEMORY = ":memory:"


@dataclass(frozen=True, slots=True, order=True)
class SessionKey:
    """A session as this side sees it: our CompID and the counterparty's."""

    sender: str
    target: str

    def __str__(self) -> str:
        return f"{self.sender}->{self.target}"


@dataclass(frozen=True, slots=True)
class Sent:
    seq: int
    msg_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Pending:
    """An application message for a session that was not logged on: sent after its next logon."""

    id: int
    msg_type: str
    body: list[Field]


@dataclass(frozen=True, slots=True)
class OrderLink:
    """The session that entered an order, and the order's latest accepted ClOrdID."""

    order_id: int
    key: SessionKey
    clordid: str | None


@dataclass(slots=True)
class Commit:
    """What one unit of session work changes, written in one transaction."""

    next_out: int
    next_in: int
    sent: list[Sent]
    links: list[OrderLink]
    pending_added: list[tuple[str, list[Field]]]
    pending_done: list[int]


@dataclass(slots=True)
class _Ticket:
    """One caller's ``commit`` waiting in a group commit."""

    key: SessionKey
    change: Commit
    done: bool = False
    written: bool = False
    error: Exception | None = None


def default_path(db: str) -> str:
    """The session store beside a DuckDB database: ``<db>.fix.sqlite``."""
    return MEMORY if db == MEMORY else f"{db}.fix.sqlite"


class SessionStore(Protocol):
    def load(self, key: SessionKey) -> tuple[int, int]:
        """``(next_out, next_in)``: the next sequence numbers to send and to expect (1, 1 if new)."""
        ...

    def commit(self, key: SessionKey, change: Commit) -> None:
        """Record ``change`` in one transaction (before any of its messages is sent)."""
        ...

    def sent_between(self, key: SessionKey, begin: int, end: int) -> list[Sent]:
        """The messages sent with sequence numbers ``begin..end``, in order."""
        ...

    def reset(self, key: SessionKey) -> None:
        """Both sequence numbers back to 1, the sent messages forgotten (ResetSeqNumFlag)."""
        ...

    def pending(self, key: SessionKey) -> list[Pending]: ...

    def link_of_order(self, order_id: int) -> OrderLink | None: ...

    def order_of_clordid(self, clordid: str) -> int | None:
        """The order a ClOrdID was accepted for, on this face."""
        ...

    def close(self) -> None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS fix_schema(version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS fix_sessions(
    sender TEXT NOT NULL, target TEXT NOT NULL, next_out INTEGER NOT NULL, next_in INTEGER NOT NULL,
    PRIMARY KEY (sender, target));
CREATE TABLE IF NOT EXISTS fix_sent(
    sender TEXT NOT NULL, target TEXT NOT NULL, seq INTEGER NOT NULL, msg_type TEXT NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (sender, target, seq));
CREATE TABLE IF NOT EXISTS fix_pending(
    id INTEGER PRIMARY KEY AUTOINCREMENT, sender TEXT NOT NULL, target TEXT NOT NULL,
    msg_type TEXT NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS fix_orders(
    order_id INTEGER PRIMARY KEY, sender TEXT NOT NULL, target TEXT NOT NULL, clordid TEXT);
CREATE TABLE IF NOT EXISTS fix_clordids(clordid TEXT PRIMARY KEY, order_id INTEGER NOT NULL);
"""
SCHEMA_VERSION = 1


class SqliteSessionStore:
    """``SessionStore`` in one sqlite3 file (WAL, synchronous=FULL: every commit is on disk
    before it returns). Thread-safe; concurrent ``commit`` calls share transactions."""

    def __init__(self, path: str = MEMORY, *, durable: bool = True) -> None:
        self.path = path
        self._lock = threading.Lock()  # the connection: one transaction or read at a time
        self._queue_lock = threading.Lock()
        self._queue: list[_Ticket] = []  # commits waiting for the next group commit
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            if path != MEMORY:
                self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            self._db.executescript(_SCHEMA)
            row = self._db.execute("SELECT max(version) FROM fix_schema").fetchone()
        except sqlite3.DatabaseError as e:
            raise ValueError(f"{path} is not a FIX session store ({e}): move it away or pass another --db") from e
        if row[0] is None:
            self._db.execute("INSERT INTO fix_schema VALUES (?)", (SCHEMA_VERSION,))
        elif row[0] > SCHEMA_VERSION:
            raise ValueError(f"{path} was written by a newer version (schema {row[0]}): upgrade oms")

    def load(self, key: SessionKey) -> tuple[int, int]:
        with self._lock:
            row = self._db.execute(
                "SELECT next_out, next_in FROM fix_sessions WHERE sender = ? AND target = ?", (key.sender, key.target)
            ).fetchone()
        return (int(row[0]), int(row[1])) if row else (1, 1)

    def commit(self, key: SessionKey, change: Commit) -> None:
        """Record ``change`` in one transaction, *group-committed*: the commits of sessions
        that arrive while another is being written wait for it, and whichever runs next
        writes all of them in one transaction (one fsync for the lot). Each caller returns
        only once its own change is committed; when a shared transaction fails, its changes
        are written again one at a time, so one failure fails no other."""
        ticket = _Ticket(key, change)
        with self._queue_lock:
            self._queue.append(ticket)
        with self._lock:
            if not ticket.done:
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                self._commit_batch(batch)
        if ticket.error is not None:
            raise ticket.error

    def _commit_batch(self, batch: list[_Ticket]) -> None:
        try:
            try:
                self._write(batch)
            except Exception as e:
                if len(batch) == 1:
                    batch[0].error = e
                    return
                for ticket in batch:  # in order, each on its own
                    try:
                        self._write([ticket])
                    except Exception as single:
                        ticket.error = single
        finally:
            for ticket in batch:  # interrupted (a BaseException): not known to be written
                if ticket.error is None and not ticket.written:
                    ticket.error = sqlite3.OperationalError(f"{self.path}: session state not confirmed")
                ticket.done = True

    def _write(self, batch: list[_Ticket]) -> None:
        """The changes of ``batch``, in order, in one transaction (under ``_lock``)."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            for ticket in batch:
                k, change = (ticket.key.sender, ticket.key.target), ticket.change
                db.execute(
                    "INSERT INTO fix_sessions VALUES (?, ?, ?, ?) ON CONFLICT (sender, target) "
                    "DO UPDATE SET next_out = excluded.next_out, next_in = excluded.next_in",
                    (*k, change.next_out, change.next_in),
                )
                if change.sent:
                    db.executemany(
                        "INSERT OR REPLACE INTO fix_sent VALUES (?, ?, ?, ?, ?)",
                        [(*k, s.seq, s.msg_type, s.data) for s in change.sent],
                    )
                for link in change.links:
                    db.execute(
                        "INSERT INTO fix_orders VALUES (?, ?, ?, ?) ON CONFLICT (order_id) "
                        "DO UPDATE SET clordid = excluded.clordid",
                        (link.order_id, link.key.sender, link.key.target, link.clordid),
                    )
                    if link.clordid is not None:
                        db.execute("INSERT OR REPLACE INTO fix_clordids VALUES (?, ?)", (link.clordid, link.order_id))
                if change.pending_added:
                    db.executemany(
                        "INSERT INTO fix_pending (sender, target, msg_type, body) VALUES (?, ?, ?, ?)",
                        [(*k, t, json.dumps(body)) for t, body in change.pending_added],
                    )
                if change.pending_done:
                    db.executemany("DELETE FROM fix_pending WHERE id = ?", [(i,) for i in change.pending_done])
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        for ticket in batch:
            ticket.written = True

    def sent_between(self, key: SessionKey, begin: int, end: int) -> list[Sent]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, msg_type, data FROM fix_sent WHERE sender = ? AND target = ? AND seq BETWEEN ? AND ? "
                "ORDER BY seq",
                (key.sender, key.target, begin, end),
            ).fetchall()
        return [Sent(int(seq), str(t), bytes(data)) for seq, t, data in rows]

    def reset(self, key: SessionKey) -> None:
        k = (key.sender, key.target)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("DELETE FROM fix_sent WHERE sender = ? AND target = ?", k)
            self._db.execute(
                "INSERT INTO fix_sessions VALUES (?, ?, 1, 1) ON CONFLICT (sender, target) "
                "DO UPDATE SET next_out = 1, next_in = 1",
                k,
            )
            self._db.execute("COMMIT")

    def pending(self, key: SessionKey) -> list[Pending]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, msg_type, body FROM fix_pending WHERE sender = ? AND target = ? ORDER BY id",
                (key.sender, key.target),
            ).fetchall()
        return [Pending(int(i), str(t), [(int(tag), str(v)) for tag, v in json.loads(body)]) for i, t, body in rows]

    def link_of_order(self, order_id: int) -> OrderLink | None:
        with self._lock:
            row = self._db.execute(
                "SELECT sender, target, clordid FROM fix_orders WHERE order_id = ?", (order_id,)
            ).fetchone()
        return OrderLink(order_id, SessionKey(row[0], row[1]), row[2]) if row else None

    def order_of_clordid(self, clordid: str) -> int | None:
        with self._lock:
            row = self._db.execute("SELECT order_id FROM fix_clordids WHERE clordid = ?", (clordid,)).fetchone()
        return int(row[0]) if row else None

    def close(self) -> None:
        with self._lock:
            self._db.close()
