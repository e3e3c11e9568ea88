"""The embedded OMS: validates, applies the lifecycle table, persists, acknowledges.

Adapter over ``commands`` (pure decisions) and a store (``oms.store``: a DuckDB file, or a
PostgreSQL database that several processes share). One engine owns one DuckDB file in a
process. Commands from any number of threads are serialized by one
writer lock and *group-committed*: whoever holds the lock decides every queued command
in arrival order and appends all their events in one INSERT, one commit; each caller is
answered only after that commit. One thread alone pays one statement per command;
concurrent callers share statements instead of queueing behind one commit each.

The engine keeps the orders it touches in a bounded cache, so deciding a command reads
nothing from the database; that is sound because the file lock and the in-process
registry make this engine the file's only writer. On a shared store (PostgreSQL) a batch
is decided on what this engine knows and placed by the store in one round trip, which
refuses it when other processes changed what it read since: then their news
(``Catchup``) is taken over -- their orders leave the cache, their client order ids and
counters are the engine's -- and the batch is decided again (after ``PLACE_TRIES``,
under the store's lock). Reads there go to the database. An engine opened ``read_only``
writes nothing (not even the refusals of the audit log): its commands raise STORE_ERROR.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, cast

from oms.clock import Clock, SystemClock
from oms.commands import Command, decide, replay
from oms.errors import InternalError, NotRecorded, OMSError, OrderNotFound, StoreError, ValidationError
from oms.gateway import PriceInput, create_request, execute_request, modify_request
from oms.lifecycle import Action, Status
from oms.model import Order, OrderEvent
from oms.store import DEFAULT_DB, MEMORY, event_row
from oms.store.base import Catchup, EventRow, SharedBookStore, kind_of, open_store
from oms.validation import SYMBOL_PATTERN, shown, validate_order_id

if TYPE_CHECKING:
    import pyarrow as pa

    from oms.listing import JsonListing

log = logging.getLogger("oms.engine")

FOLD_EVERY = 10_000
"""Fold the projection snapshot forward after this many events (keeps the view's tail short)."""

PLACE_TRIES = 3
"""On a shared store, how often a batch is decided again when other processes changed
what it read, before it is decided under the book's lock (which always succeeds)."""

Committed = list[tuple[Action, Order]]
"""What one commit accepted, in order: each command's action and the order as it left it."""
Subscriber = Callable[[Committed], None]

_open_files: dict[object, Engine] = {}
"""Open engines by file identity: ``(st_dev, st_ino)``, and the resolved path."""
_open_files_lock = threading.Lock()


@dataclass(slots=True)
class _Ticket:
    command: Command
    result: Order | None = None
    error: OMSError | None = None
    done: bool = False

    def outcome(self) -> Order:
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


@dataclass(slots=True)
class _Decided:
    """A batch decided, not yet known to be committed: its rows numbered after the
    engine's last seq and order id, and what the decisions read."""

    seq: int
    last_order_id: int
    staged: dict[int, Order]
    client_order_ids: set[str]
    answers: list[Order | OMSError]
    rows: list[EventRow]
    reads: set[int]
    """The existing orders the decisions depended on (found, or found missing)."""
    pinned: int | None
    """The smallest id above the engine's last order id a command named (None: none did)."""
    last_at: datetime | None
    """The time of the batch's last event."""

    def shifted(self, seq_shift: int, id_shift: int, *, known_order_id: int) -> _Decided:
        """The batch as a shared store placed it: seqs and new orders' ids moved on."""
        if not (seq_shift or id_shift):
            return self

        def moved(order: Order) -> Order:
            return replace(order, order_id=order.order_id + id_shift) if order.order_id > known_order_id else order

        answers = [answer if isinstance(answer, OMSError) else moved(answer) for answer in self.answers]
        staged = {order.order_id: order for order in map(moved, self.staged.values())}
        return _Decided(self.seq + seq_shift, self.last_order_id + id_shift, staged, self.client_order_ids,
                        answers, self.rows, self.reads, self.pinned, self.last_at)  # fmt: skip


def _answers(tickets: list[_Ticket]) -> list[Order | OMSError]:
    return [ticket.error if ticket.error is not None else ticket.outcome() for ticket in tickets]


class _Cache:
    """Orders by id, least recently used evicted first (misses are read from the store)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._orders: OrderedDict[int, Order] = OrderedDict()

    def get(self, order_id: int) -> Order | None:
        order = self._orders.get(order_id)
        if order is not None:
            self._orders.move_to_end(order_id)
        return order

    def evict(self, order_id: int) -> None:
        self._orders.pop(order_id, None)

    def put(self, order: Order) -> None:
        self._orders[order.order_id] = order
        self._orders.move_to_end(order.order_id)
        while len(self._orders) > self.size:
            self._orders.popitem(last=False)


class Engine:
    """The embedded gateway over one DuckDB file (or ``":memory:"``), or a PostgreSQL
    database (``postgresql://...``)."""

    def __init__(
        self,
        path: str | os.PathLike[str] = DEFAULT_DB,
        *,
        clock: Clock | None = None,
        cache_size: int = 100_000,
        threads: int | None = None,
        read_only: bool = False,
    ) -> None:
        self.path = str(path)
        self.read_only = read_only and self.path != MEMORY
        self.clock: Clock = clock or SystemClock()
        self._keys: tuple[object, ...] = ()
        guarded = kind_of(self.path).single_file and self.path != MEMORY
        with _open_files_lock:
            if guarded:
                # A file is its device and inode, not its path: a hard link or a symlink
                # to an open file is the same file, and two writers would corrupt it.
                keys = _file_keys(self.path)
                if any(key in _open_files for key in keys):
                    raise StoreError(
                        f"{self.path} is already open in this process (perhaps by another name: a link): "
                        "use that gateway, or close it first"
                    )
            self._store = open_store(self.path, threads=threads, read_only=self.read_only)
            self.path = self._store.path  # a URL without its password
            if guarded:
                self._keys = _file_keys(self.path)  # the file exists now
                for key in self._keys:
                    _open_files[key] = self
        self._cache = _Cache(cache_size)
        self._shared: SharedBookStore | None = cast("SharedBookStore", self._store) if self._store.shared else None
        self._last_at: datetime | None = None  # on a shared store: the latest event time known
        try:
            (self._seq, self._last_order_id, self._folded_seq), self._client_order_ids = self._store.open_state()
        except BaseException:  # a file that fails its first reads is released, not held
            with contextlib.suppress(StoreError):
                self._store.close()
            self._unregister()
            raise
        self._queue: list[_Ticket] = []
        self._queue_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._closed = False
        self._subscribers: tuple[Subscriber, ...] = ()
        self._published: queue.SimpleQueue[Committed | threading.Event | None] | None = None
        self._publisher: threading.Thread | None = None

    @property
    def target(self) -> str:
        return self.path

    def __repr__(self) -> str:
        return f"Engine({self.path!r}, clock={self.clock!r})"

    # ---- commands --------------------------------------------------------------------

    def create(
        self,
        *,
        symbol: str,
        side: str,
        quantity: int,
        price: PriceInput | None = None,
        order_type: str = "LIMIT",
        client_order_id: str | None = None,
    ) -> Order:
        """Create a NEW order. Raises VALIDATION_ERROR or DUPLICATE_CLIENT_ORDER_ID."""
        request = create_request(
            symbol=symbol, side=side, quantity=quantity, price=price, order_type=order_type,
            client_order_id=client_order_id,
        )  # fmt: skip
        return self.submit(Command(Action.CREATE, None, request))

    def modify(self, order_id: int, *, quantity: int | None = None, price: PriceInput | None = None) -> Order:
        """Change quantity and/or price of a NEW order (-> MODIFIED).

        Raises VALIDATION_ERROR, ORDER_NOT_FOUND or INVALID_TRANSITION."""
        return self.submit(Command(Action.MODIFY, order_id, modify_request(quantity, price)))

    def cancel(self, order_id: int) -> Order:
        """Cancel a NEW order. Raises ORDER_NOT_FOUND or INVALID_TRANSITION."""
        return self.submit(Command(Action.CANCEL, order_id))

    def execute(self, order_id: int, *, price: PriceInput | None = None) -> Order:
        """Fill a NEW or MODIFIED order in full. Raises VALIDATION_ERROR, ORDER_NOT_FOUND,
        INVALID_TRANSITION or PRICE_OUTSIDE_LIMIT."""
        return self.submit(Command(Action.EXECUTE, order_id, execute_request(price)))

    def submit(self, command: Command) -> Order:
        """Decide, persist and acknowledge one command (the raw-request entry the API uses).

        Returns only after the command's event is committed; a refusal is committed to
        the log too, then raised."""
        ticket = _Ticket(command)
        self._ensure_writable()
        with self._queue_lock:
            if self._closed:
                raise StoreError(f"{self.path} is closed")
            self._queue.append(ticket)
        with self._write_lock:
            if not ticket.done:
                self._drain()
        return ticket.outcome()

    def submit_many(self, commands: list[Command]) -> list[Order | OMSError]:
        """Decide and commit ``commands`` as one batch (with anything else queued); returns,
        in order, each command's order or its refusal (refusals are logged, not raised)."""
        tickets = self._enqueue(commands)
        with self._write_lock:
            if not all(ticket.done for ticket in tickets):
                self._drain()
        return _answers(tickets)

    def try_submit_many(self, commands: list[Command]) -> list[Order | OMSError] | None:
        """``submit_many``, but only if it can start at once -- for an event loop, which must
        not block. None, with nothing queued or decided, when another thread is writing or
        reading the database, or when this batch would fold the projection (a longer job)."""
        if self._store.shared:  # a commit waits on the network and on other processes
            return None
        if not self._write_lock.acquire(blocking=False):
            return None
        try:
            if self._seq + len(commands) - self._folded_seq >= FOLD_EVERY:
                return None
            if not self._store.lock.acquire(blocking=False):
                return None
            try:
                tickets = self._enqueue(commands)
                # Other threads' queued commands may join and make a fold due: the next
                # blocking call does it, not this one.
                self._drain(fold=False)
            finally:
                self._store.lock.release()
        finally:
            self._write_lock.release()
        return _answers(tickets)

    def _enqueue(self, commands: list[Command]) -> list[_Ticket]:
        tickets = [_Ticket(command) for command in commands]
        self._ensure_writable()
        with self._queue_lock:
            if self._closed:
                raise StoreError(f"{self.path} is closed")
            self._queue.extend(tickets)
        return tickets

    def _drain(self, *, fold: bool = True) -> None:
        """Decide every queued command in order, append their events in one statement,
        then answer them all. Whatever goes wrong, every ticket of the batch is answered,
        and one command's failure fails no other: a batch whose commit fails is committed
        again one command at a time. Then fold the projection forward, if due and ``fold``."""
        with self._queue_lock:
            batch, self._queue = self._queue, []
        try:
            try:
                self._commit_batch(batch)
            except Exception as e:
                # On a shared store a failure is the server's or the network's, and a
                # retry could record twice what a lost COMMIT recorded once -- unless the
                # server is known to have recorded nothing (NotRecorded).
                if len(batch) == 1 or (self._store.shared and not isinstance(e, NotRecorded)):
                    for ticket in batch:
                        ticket.result, ticket.error = None, self._store_failure(e)
                else:
                    for ticket in batch:  # in order: each decided on what committed before it
                        ticket.result = ticket.error = None
                        try:
                            self._commit_batch([ticket])
                        except Exception as single:
                            ticket.result, ticket.error = None, self._store_failure(single)
        finally:
            for ticket in batch:
                if ticket.error is None and ticket.result is None:  # interrupted (a BaseException)
                    ticket.error = StoreError(f"{self.path}: command not confirmed")
                ticket.done = True
        if fold and self._seq - self._folded_seq >= FOLD_EVERY:
            # Folding only speeds reads up; the view is right without it, and it is retried.
            with contextlib.suppress(StoreError):
                self._fold()

    def _store_failure(self, e: Exception) -> StoreError:
        if isinstance(e, StoreError):
            return e
        log.error("commit failed on %s", self.path, exc_info=e)
        error = StoreError(f"{self.path}: command not recorded: {type(e).__name__}")
        error.__cause__ = e
        return error

    def _commit_batch(self, batch: list[_Ticket]) -> None:
        """Decide ``batch`` and commit its events in one store transaction; only once it
        has committed are the tickets answered and the engine's state moved on.

        On a shared store the batch is decided on what this engine knows and placed in
        one round trip (``place``), decided again when others changed what it read,
        and after ``PLACE_TRIES`` decided under the book's lock (``writing``)."""
        if self._shared is not None:
            for _ in range(PLACE_TRIES):
                if self._place(self._shared, batch):
                    return
        with self._store.writing(self._seq) as news:
            if news is not None:
                self._catch_up(news)
            decided = self._decide(batch)
            self._store.append(decided.rows)  # on a shared store, inside its transaction
        self._committed(batch, decided)

    def _place(self, store: SharedBookStore, batch: list[_Ticket]) -> bool:
        """One try at placing ``batch``: True once committed, False (nothing written,
        the others' news taken over) when it must be decided again."""
        decided = self._decide(batch)
        known_order_id = self._last_order_id
        placement = store.place(
            self._seq, known_order_id, decided.rows, reads=decided.reads, client_order_ids=decided.client_order_ids,
            pinned=decided.pinned, created=decided.last_order_id - known_order_id,
        )  # fmt: skip
        if placement.news is not None:
            self._catch_up(placement.news)
        self._not_before(placement.last_at)
        if not placement.placed:
            return False
        self._committed(batch, decided.shifted(placement.seq_shift, placement.id_shift, known_order_id=known_order_id))
        return True

    def _catch_up(self, news: Catchup) -> None:
        """Take over what other processes committed: their counters, their client order
        ids, and their orders out of the cache (read again when needed)."""
        self._seq = self._folded_seq = news.seq
        self._last_order_id = news.last_order_id
        self._client_order_ids |= news.client_order_ids
        for order_id in news.touched:
            self._cache.evict(order_id)
        self._not_before(news.last_at)

    def _not_before(self, at: datetime | None) -> None:
        """No event this engine decides on a shared store may be earlier than ``at`` (the
        book's last event, perhaps another process's, whose clock may run ahead)."""
        if at is not None and (self._last_at is None or at > self._last_at):
            self._last_at = at

    def _now(self) -> datetime:
        """The clock, or the book's last event time when the clock is behind it (shared
        stores only: the log stays oldest first across processes' clocks)."""
        at = self.clock()
        return self._last_at if self._last_at is not None and at < self._last_at else at

    def _decide(self, batch: list[_Ticket]) -> _Decided:
        """Decide the batch in order, on the engine's state and what the batch itself
        changes, into log rows numbered after the engine's last seq and order id."""
        staged: dict[int, Order] = {}
        staged_client_ids: set[str] = set()
        seq, last_order_id = self._seq, self._last_order_id
        rows: list[EventRow] = []
        reads: set[int] = set()
        pinned: int | None = None
        last_at: datetime | None = None
        answers: list[Order | OMSError] = []
        for ticket in batch:
            command = ticket.command
            at: datetime | None = None
            current: Order | None = None
            order_id: Any = None
            try:
                order_id = command.order_id
                at = last_at = self._now()
                if command.action is not Action.CREATE:
                    order_id = validate_order_id(order_id)
                    if _storable_id(order_id) is not None:  # else no order can have it
                        reads.add(order_id)
                        if order_id > self._last_order_id and (pinned is None or order_id < pinned):
                            pinned = order_id
                    current = staged.get(order_id) or self._lookup(order_id)
                order = decide(
                    command,
                    current,
                    at=at,
                    next_order_id=last_order_id + 1,
                    client_order_ids=_Either(self._client_order_ids, staged_client_ids),
                )
                row = event_row(seq + 1, command.action, order.order_id, at, command.request, before=current,
                                after=order)  # fmt: skip
            except Exception as e:
                if isinstance(e, OMSError):
                    refusal: OMSError = e
                else:  # a defect: it fails this command only, never the others of the batch
                    log.error("unexpected failure deciding a command on order %r", order_id, exc_info=e)
                    refusal = InternalError("the command failed unexpectedly; the server log has the details")
                    refusal.__cause__ = e
                answers.append(refusal)
                refused = None if at is None else _refusal_row(seq + 1, command, order_id, at, current, refusal)
                if refused is not None:
                    seq += 1
                    rows.append(refused)
                continue
            seq += 1
            if command.action is Action.CREATE:
                last_order_id = order.order_id
                if order.client_order_id is not None:
                    staged_client_ids.add(order.client_order_id)
            staged[order.order_id] = order
            answers.append(order)
            rows.append(row)
        return _Decided(seq, last_order_id, staged, staged_client_ids, answers, rows, reads, pinned, last_at)

    def _committed(self, batch: list[_Ticket], decided: _Decided) -> None:
        seq, last_order_id, staged, staged_client_ids, answers = (
            decided.seq, decided.last_order_id, decided.staged, decided.client_order_ids, decided.answers,
        )  # fmt: skip
        for ticket, answer in zip(batch, answers, strict=True):
            if isinstance(answer, OMSError):
                ticket.error = answer
            else:
                ticket.result = answer
        self._seq, self._last_order_id = seq, last_order_id
        if self._store.shared:
            self._folded_seq = seq  # nothing to fold
            self._not_before(decided.last_at)
        self._client_order_ids |= staged_client_ids
        for order in staged.values():
            self._cache.put(order)
        if self._subscribers:
            self._publish(batch, answers)

    # ---- subscribers ---------------------------------------------------------------

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(committed)`` after each commit of commands, with what it accepted:
        ``[(action, order), ...]`` in decision order (refusals and ``bulk_create`` are not
        reported). Returns the function that unsubscribes it.

        Callbacks run on one background thread of the engine, in commit order, never while
        the engine is locked: a command is answered without waiting for them, and a callback
        may call the engine (even a command). A callback that raises is logged, and the
        next commit calls it again. Unsubscribing returns once the commits made before it
        have been delivered (unless called from a callback)."""
        with self._queue_lock:
            self._ensure_open()
            if self._published is None:
                self._published = queue.SimpleQueue()
                self._publisher = threading.Thread(
                    target=self._deliver, args=(self._published,), name="oms-engine-subscribers", daemon=True
                )
                self._publisher.start()
            self._subscribers = (*self._subscribers, callback)

        def unsubscribe() -> None:
            published, publisher = self._published, self._publisher
            if publisher is not None and publisher.is_alive() and publisher is not threading.current_thread():
                assert published is not None
                delivered = threading.Event()
                published.put(delivered)
                delivered.wait(timeout=10)
            with self._queue_lock:
                self._subscribers = tuple(s for s in self._subscribers if s is not callback)

        return unsubscribe

    def _publish(self, batch: list[_Ticket], answers: list[Order | OMSError]) -> None:
        """Queue a commit's accepted results for the subscribers (under the write lock: in
        commit order; a put never blocks)."""
        committed = [
            (ticket.command.action, answer)
            for ticket, answer in zip(batch, answers, strict=True)
            if not isinstance(answer, OMSError)
        ]
        if committed and self._published is not None:
            self._published.put(committed)

    def _deliver(self, published: queue.SimpleQueue[Committed | threading.Event | None]) -> None:
        while (committed := published.get()) is not None:
            if isinstance(committed, threading.Event):  # an unsubscribe waiting for what came before it
                committed.set()
                continue
            for callback in self._subscribers:
                try:
                    callback(committed)
                except Exception:
                    log.exception("a subscriber of %s failed on a commit of %d results", self.path, len(committed))

    def _stop_publisher(self) -> None:
        """Deliver what is queued, then end the subscribers' thread."""
        published, publisher = self._published, self._publisher
        if published is None or publisher is None:
            return
        published.put(None)
        if publisher is not threading.current_thread():  # a callback may close the engine
            publisher.join(timeout=10)

    def _lookup(self, order_id: int) -> Order | None:
        order = self._cache.get(order_id)
        if order is None and 0 < order_id <= self._last_order_id:
            order = self._store.load_order(order_id)
            if order is not None:
                self._cache.put(order)
        return order

    def _fold(self) -> None:
        self._store.fold()
        self._folded_seq = self._seq

    # ---- bulk ----------------------------------------------------------------------

    def bulk_create(self, orders: Any) -> range:
        """Create many NEW orders at once (a DataFrame, an Arrow table or a list of dicts).

        Same validation as ``create``, all or nothing: any bad row raises one
        VALIDATION_ERROR naming rows and fields, and nothing is stored. Returns the range
        of order ids assigned, in input order."""
        from oms.bulk import build_create_events

        self._ensure_writable()
        with self._write_lock:
            self._ensure_open()
            refusal: OMSError | None = None
            # One store transaction: on a shared store it holds the book, and what others
            # committed (their client order ids above all) is known before the rows are checked.
            with self._store.writing(self._seq) as news:
                if news is not None:
                    self._catch_up(news)
                at = self._now()
                try:
                    table, client_ids = build_create_events(
                        orders, first_seq=self._seq + 1, first_order_id=self._last_order_id + 1,
                        at=at, existing_client_order_ids=self._client_order_ids,
                    )  # fmt: skip
                except OMSError as e:
                    refusal = e
                    self._store.append(
                        [event_row(self._seq + 1, Action.CREATE, None, at, {"bulk": True},
                                   before=None, refusal=(e.code, e.message[:2000]))]
                    )  # fmt: skip
                else:
                    self._store.append_arrow(table)
            if refusal is not None:
                self._seq += 1
                if self._store.shared:
                    self._folded_seq = self._seq
                raise refusal
            first = self._last_order_id + 1
            self._seq += table.num_rows
            self._last_order_id += table.num_rows
            self._folded_seq = self._seq
            self._client_order_ids |= client_ids
            return range(first, self._last_order_id + 1)

    # ---- reads -----------------------------------------------------------------------

    def get(self, order_id: int) -> Order:
        """The order. Raises ORDER_NOT_FOUND (or VALIDATION_ERROR for a bad id)."""
        order_id = validate_order_id(order_id)
        if self._store.shared:  # other processes change orders: the database has the truth
            self._ensure_open()
            order = self._store.load_order(order_id)
        else:
            with self._write_lock:
                self._ensure_open()
                order = self._lookup(order_id)
        if order is None:
            raise OrderNotFound(order_id)
        return order

    def orders(self, *, status: str | None = None, symbol: str | None = None) -> list[Order]:
        """Orders sorted by id, optionally filtered. Raises VALIDATION_ERROR for a bad filter."""
        status, symbol = check_filters(status, symbol)
        self._ensure_open()
        return self._store.load_orders(status=status, symbol=symbol)

    def events(self, order_id: int | None = None) -> list[OrderEvent]:
        """The audit log, oldest first: one order's (ORDER_NOT_FOUND if unknown) or all.

        An order's history starts at its create: commands sent to its id before it
        existed were refused ORDER_NOT_FOUND, and are in the whole log, not in its history."""
        if order_id is None:
            self._ensure_open()
            return self._store.load_events()
        self.get(order_id)
        events = self._store.load_events(order_id)
        created = next((i for i, event in enumerate(events) if event.accepted), len(events))
        return events[created:]

    def replay(self) -> list[Order]:
        """Every order rebuilt from the accepted events alone (compare with ``orders()``)."""
        self._ensure_open()
        rebuilt = replay(self._store.load_events(accepted_only=True))
        return [rebuilt[k] for k in sorted(rebuilt)]

    def arrow(self, sql: str, params: Iterable[Any] = ()) -> pa.Table:
        """Run read-only SQL against the store (``orders``, ``order_events``) as Arrow."""
        self._ensure_open()
        return self._store.arrow(sql, list(params))

    sql_time_limit: float = 5.0
    """Seconds a query of ``sql_arrow`` may run before it is cancelled (SQL_TIMEOUT)."""

    def sql_arrow(self, query: str, params: Sequence[Any] | None = None) -> pa.Table:
        """One read-only SELECT over the book as Arrow (``oms.sqlread``: checked by DuckDB's
        parser, run on its own connection in a read-only transaction, time-limited).
        Raises SQL_REFUSED, SQL_ERROR, SQL_TIMEOUT, SQL_TOO_LARGE or VALIDATION_ERROR."""
        from oms import sqlread

        self._ensure_open()
        return sqlread.run(self._store.cursor, query, params, time_limit=self.sql_time_limit)

    def orders_json(
        self,
        *,
        status: str | None = None,
        symbol: str | None = None,
        after: int | None = None,
        limit: int | None = None,
    ) -> JsonListing:
        """The listing as ``GET /orders`` sends it, written by DuckDB (``oms.listing``): a
        page when ``limit`` is given, else every order, streamed. VALIDATION_ERROR for a bad filter."""
        from oms import listing

        status, symbol = check_filters(status, symbol)
        self._ensure_open()
        return listing.listing(self._store.cursor(), status=status, symbol=symbol, after=after, limit=limit)

    def export_parquet(self, folder: str | os.PathLike[str]) -> dict[str, int]:
        """Write the event log and the orders as Parquet into ``folder`` (``oms.store.export``:
        streamed, any size); returns the rows per file."""
        from oms.store.export import export_parquet

        self._ensure_open()
        return export_parquet(self._store, folder)

    # ---- life --------------------------------------------------------------------------

    def _ensure_open(self) -> None:
        if self._closed:
            raise StoreError(f"{self.path} is closed")

    def _ensure_writable(self) -> None:
        if self.read_only:
            raise StoreError(f"{self.path} is open read-only: open it without read_only to change the book")

    def close(self) -> None:
        """Fold the projection, checkpoint and release the file. Idempotent.

        The file is released whatever happens; raises STORE_ERROR when the fold or the
        checkpoint failed (a full disk): every acknowledged command is then still in the
        write-ahead log, which the next open replays."""
        with self._queue_lock:
            if self._closed:
                return
            self._closed = True
        with self._write_lock:
            failure: BaseException | None = None
            try:
                if not self.read_only and self._seq > self._folded_seq:
                    self._fold()
            except BaseException as e:
                failure = e
            try:
                self._store.close()
            except BaseException as e:
                failure = failure or e
            finally:
                self._unregister()
        self._stop_publisher()
        if failure is not None:
            raise failure

    def _unregister(self) -> None:
        with _open_files_lock:
            for key in self._keys:
                if _open_files.get(key) is self:
                    del _open_files[key]

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class _Either:
    """Membership in either of two sets, without copying them."""

    __slots__ = ("a", "b")

    def __init__(self, a: set[str], b: set[str]) -> None:
        self.a, self.b = a, b

    def __contains__(self, item: object) -> bool:
        return item in self.a or item in self.b


def _file_keys(path: str) -> tuple[object, ...]:
    """The identities of a database file: its resolved path and, once it exists, its
    device and inode (which every hard link shares)."""
    resolved = str(Path(path).resolve())
    try:
        info = os.stat(path)
    except OSError:
        return (resolved,)
    return (resolved, (info.st_dev, info.st_ino))


def _refusal_row(
    seq: int, command: Command, order_id: Any, at: datetime, current: Order | None, refusal: OMSError
) -> tuple[int, int | None, str] | None:
    """The log row of a refused command; one that cannot be written as asked keeps only
    the reason, and a command too broken for even that is refused without a row."""
    reason = (refusal.code, refusal.message)
    try:
        request = _jsonable(command.request, order_id)
        return event_row(seq, command.action, _storable_id(order_id), at, request, before=current, refusal=reason)
    except Exception:
        pass
    try:
        unrecorded = {"unrecorded": "the request could not be written to the log"}
        return event_row(seq, command.action, _storable_id(order_id), at, unrecorded, before=None, refusal=reason)
    except Exception:
        return None


def _storable_id(order_id: Any) -> int | None:
    """The id as the log's BIGINT column can hold it, else None (kept in the request)."""
    if isinstance(order_id, int) and not isinstance(order_id, bool) and -(2**63) <= order_id < 2**63:
        return order_id
    return None


def _jsonable(request: Mapping[str, Any], order_id: Any) -> dict[str, Any]:
    out = dict(request)
    if order_id is not None and _storable_id(order_id) is None:
        out["order_id"] = order_id
    return out


def check_filters(status: str | None, symbol: str | None) -> tuple[str | None, str | None]:
    """Validate the ``status`` / ``symbol`` filters of an order listing."""
    if status is not None:
        if not isinstance(status, str) or status.upper() not in Status.__members__:
            raise ValidationError(f"must be one of {'|'.join(Status)}, got {shown(status)}", "status")
        status = status.upper()
    if symbol is not None:
        if not isinstance(symbol, str) or not SYMBOL_PATTERN.fullmatch(symbol):
            raise ValidationError(f"must be 1-16 letters, digits or . - _, got {shown(symbol)}", "symbol")
        symbol = symbol.upper()
    return status, symbol
