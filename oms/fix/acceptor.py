"""The FIX 4.4 acceptor: asyncio TCP on loopback, one task per connection, over one engine.

Adapter layer. The event loop moves bytes: it cuts frames (``codec.FrameReader``, which
drops garbled ones), finds the session a Logon names (an unknown CompID, or a session
already connected, is refused by closing the connection), and hands frames and timer
ticks to the session in a worker thread, so one session's sqlite commits and engine calls
never hold up another's messages -- in the pool, concurrent sessions share the engine's
group commits and the session store's. When one session alone is connected and no
session work is in the pool, its frames are processed on the loop's thread instead: there
is nobody to hold up, and that saves the two thread hand-offs (to the pool and back) of
every message, like the REST committer's commit on the loop. A session writes through
``_Connection.write``, which puts bytes onto the loop in call order.

Reports nobody asked for -- a fill, or a cancel or modify made from another face (REST, a
notebook, the engine itself) -- reach the session that entered the order: the acceptor
subscribes to the engine's commits (``Engine.subscribe``) and reports every accepted
execute, modify and cancel except the modifies and cancels its own sessions made (those
are answered directly, with their ClOrdIDs). An engine without ``subscribe`` is wrapped
instead (``NotifyingGateway``: only calls through ``FixAcceptor.gateway`` are reported).
Reports go out on one thread, in commit order. A session that is logged out keeps them and
gets them after its next logon.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Self

from oms.clock import Clock
from oms.fix.application import OrderApplication, report
from oms.fix.codec import FrameReader, decode
from oms.fix.mapping import EXEC_TYPE
from oms.fix.session import Session
from oms.fix.state import SessionKey, SessionStore, SqliteSessionStore
from oms.gateway import Gateway, PriceInput, Subscribable
from oms.lifecycle import Action
from oms.model import Order, OrderEvent

log = logging.getLogger("oms.fix.acceptor")

DEFAULT_HOST = "127.0.0.1"
LOGON_TIMEOUT = 10.0
TAKEOVER_WAIT_S = 1.0
"""How long a Logon waits for the session's previous connection to go."""
"""Seconds a connection may take to send its Logon."""
TICK = 0.5
"""Seconds between timer ticks of a session (heartbeats are whole seconds)."""
READ_SIZE = 65536


class _Connection:
    """A session's transport: writes and the close go through the event loop, in order.

    A write made on the loop's own thread (a session's work run inline, see
    ``FixAcceptor._serve``) goes straight to the socket when no write from another thread
    is still waiting for its turn of the loop -- else after those, so the order holds."""

    def __init__(self, loop: asyncio.AbstractEventLoop, writer: asyncio.StreamWriter) -> None:
        self.loop, self.writer = loop, writer
        self.closed = False
        self._loop_thread = threading.get_ident()  # made on the loop's thread, by _serve
        self._lock = threading.Lock()
        self._queued = 0  # writes scheduled on the loop, not yet made

    def write(self, data: bytes) -> None:
        if self.closed:
            return
        with self._lock:
            if self._queued == 0 and threading.get_ident() == self._loop_thread:
                self._put(data)
                return
            self._queued += 1
        self.loop.call_soon_threadsafe(self._write, data)

    def _write(self, data: bytes) -> None:
        with self._lock:
            self._queued -= 1
            self._put(data)

    def _put(self, data: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(data)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.loop.call_soon_threadsafe(self.writer.close)


class _Delegating:
    """The Gateway protocol, every call passed to ``engine``."""

    def __init__(self, engine: Gateway) -> None:
        self.engine = engine

    @property
    def target(self) -> str:
        return self.engine.target

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
        return self.engine.create(
            symbol=symbol, side=side, quantity=quantity, price=price, order_type=order_type,
            client_order_id=client_order_id,
        )  # fmt: skip

    def modify(self, order_id: int, *, quantity: int | None = None, price: PriceInput | None = None) -> Order:
        return self.engine.modify(order_id, quantity=quantity, price=price)

    def cancel(self, order_id: int) -> Order:
        return self.engine.cancel(order_id)

    def execute(self, order_id: int, *, price: PriceInput | None = None) -> Order:
        return self.engine.execute(order_id, price=price)

    def get(self, order_id: int) -> Order:
        return self.engine.get(order_id)

    def orders(self, *, status: str | None = None, symbol: str | None = None) -> list[Order]:
        return self.engine.orders(status=status, symbol=symbol)

    def events(self, order_id: int | None = None) -> list[OrderEvent]:
        return self.engine.events(order_id)

    def close(self) -> None:
        self.engine.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class NotifyingGateway(_Delegating):
    """For an engine without ``subscribe``: the engine, whose accepted execute/modify/cancel
    calls are reported to the FIX session that entered the order."""

    def __init__(self, engine: Gateway, acceptor: FixAcceptor) -> None:
        super().__init__(engine)
        self._acceptor = acceptor

    def modify(self, order_id: int, *, quantity: int | None = None, price: PriceInput | None = None) -> Order:
        order = self.engine.modify(order_id, quantity=quantity, price=price)
        self._acceptor.notify(order, Action.MODIFY)
        return order

    def cancel(self, order_id: int) -> Order:
        order = self.engine.cancel(order_id)
        self._acceptor.notify(order, Action.CANCEL)
        return order

    def execute(self, order_id: int, *, price: PriceInput | None = None) -> Order:
        order = self.engine.execute(order_id, price=price)
        self._acceptor.notify(order, Action.EXECUTE)
        return order


class OwnChanges:
    """Tells the commits of the FIX sessions' own modifies and cancels (answered directly)
    from everyone else's (reported unsolicited), whatever order the engine's report of a
    commit and the return of the call that made it arrive in.

    An accepted event is one ``(order_id, version)``. While a session's call on an order is
    in flight, the engine's reports on that order are held; when the call returns, its own
    event is dropped and the rest are released. A report arriving after the call returned
    finds its event in ``_mine`` and is dropped."""

    def __init__(self, report: Callable[[Order, Action], None]) -> None:
        self._report = report
        self._lock = threading.Lock()
        self._inflight: dict[int, int] = {}
        self._held: dict[int, list[tuple[Action, Order]]] = {}
        self._mine: set[tuple[int, int]] = set()

    def committed(self, action: Action, order: Order) -> None:
        """The engine accepted ``action`` on ``order`` (from the engine's subscriber thread)."""
        key = (order.order_id, order.version)
        with self._lock:
            if key in self._mine:
                self._mine.discard(key)
                return
            if order.order_id in self._inflight:
                self._held.setdefault(order.order_id, []).append((action, order))
                return
        self._report(order, action)

    @contextlib.contextmanager
    def making(self, order_id: int) -> Iterator[list[Order]]:
        """Around a session's own call on ``order_id``; append the order it returns to the list."""
        made: list[Order] = []
        with self._lock:
            self._inflight[order_id] = self._inflight.get(order_id, 0) + 1
        try:
            yield made
        finally:
            mine = (made[0].order_id, made[0].version) if made else None
            released: list[tuple[Action, Order]] = []
            with self._lock:
                left = self._inflight.pop(order_id) - 1
                if left:
                    self._inflight[order_id] = left
                kept: list[tuple[Action, Order]] = []
                for action, order in self._held.pop(order_id, []):
                    if mine is not None and (order.order_id, order.version) == mine:
                        mine = None
                    else:
                        (kept if left else released).append((action, order))
                if kept:
                    self._held[order_id] = kept
                if mine is not None:
                    self._mine.add(mine)
            for action, order in released:
                self._report(order, action)


class _SessionsGateway(_Delegating):
    """The engine as the FIX application uses it: its modifies and cancels are its own."""

    def __init__(self, engine: Gateway, own: OwnChanges) -> None:
        super().__init__(engine)
        self._own = own

    def modify(self, order_id: int, *, quantity: int | None = None, price: PriceInput | None = None) -> Order:
        with self._own.making(order_id) as made:
            made.append(self.engine.modify(order_id, quantity=quantity, price=price))
        return made[0]

    def cancel(self, order_id: int) -> Order:
        with self._own.making(order_id) as made:
            made.append(self.engine.cancel(order_id))
        return made[0]


class FixAcceptor:
    """FIX 4.4 sessions ``sender`` <-> each of ``targets`` over ``engine``.

    ``await start()`` binds (port 0: any free port, see ``port``); ``await stop()`` logs the
    sessions out, closes the connections and the session store (not the engine: its owner
    closes it)."""

    def __init__(
        self,
        engine: Gateway,
        *,
        sender: str,
        targets: Sequence[str],
        store: SessionStore | None = None,
        host: str = DEFAULT_HOST,
        port: int = 0,
        workers: int = 16,
        timestamps: Clock | None = None,
    ) -> None:
        """``timestamps``: what the sessions' SendingTime (52) is read from -- the wall clock
        when None; pass the engine's clock (``engine.clock``) so that an engine on the
        simulated clock stamps its FIX messages from it too (a reproducible notebook)."""
        if not targets:
            raise ValueError("at least one TargetCompID is needed")
        self.engine = engine
        self.store: SessionStore = store if store is not None else SqliteSessionStore()
        self.host, self.port = host, port
        self.sender = sender
        self.own = OwnChanges(self.notify)
        self._unsubscribe: Callable[[], None] | None = None
        self.gateway: Gateway
        """The engine as other faces in this process should use it: the engine itself when it
        reports its commits (every face is then reported), else wrapped."""
        if isinstance(engine, Subscribable):
            self.app = OrderApplication(_SessionsGateway(engine, self.own), self.store)
            self.gateway = engine
            self._unsubscribe = engine.subscribe(self._on_commit)
        else:
            self.app = OrderApplication(engine, self.store)
            self.gateway = NotifyingGateway(engine, self)
        self.sessions = {
            t: Session(SessionKey(sender, t), self.store, self.app, timestamps=timestamps) for t in targets
        }
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="oms-fix")
        self._reports = ThreadPoolExecutor(max_workers=1, thread_name_prefix="oms-fix-reports")  # in order
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._busy = 0  # session work in the pool (only the loop's thread counts it)
        self._connected = 0  # connections attached to a session

    def session(self, target: str) -> Session:
        return self.sessions[target]

    # ---- unsolicited reports ---------------------------------------------------------

    def _on_commit(self, committed: list[tuple[Action, Order]]) -> None:
        """The engine's report of a commit, from any face (its subscriber thread)."""
        for action, order in committed:
            if action is not Action.CREATE:  # a FIX create is answered; another face's has no session
                self.own.committed(action, order)

    def notify(self, order: Order, action: Action) -> None:
        """Report ``order`` after ``action`` (made from another face) to the session that
        entered it, if one did. Returns at once: reports are sent from one thread, in order."""
        if not self._stopping:
            with contextlib.suppress(RuntimeError):  # the pool is shut down
                self._reports.submit(self._report, order, action)

    def _report(self, order: Order, action: Action) -> None:
        try:
            link = self.store.link_of_order(order.order_id)
            if link is None or link.key.target not in self.sessions or link.key.sender != self.sender:
                return
            body = report(order, EXEC_TYPE[action.value], clordid=link.clordid)
            self.sessions[link.key.target].send("8", body)
        except Exception:
            log.exception("could not report order %s after %s", order.order_id, action.value)

    # ---- life ------------------------------------------------------------------------

    async def start(self) -> int:
        """Listen; returns the port."""
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        """Log every session out, close every connection, release the session store."""
        loop = asyncio.get_running_loop()
        if self._unsubscribe is not None:  # after the reports of the commits made so far
            await loop.run_in_executor(self._pool, self._unsubscribe)
            self._unsubscribe = None
        self._stopping = True
        if self._server is not None:
            self._server.close()
        for session in self.sessions.values():
            if session.logged_on:
                await loop.run_in_executor(self._pool, session.logout, "the server is stopping")
        for session in self.sessions.values():
            transport = session.transport
            if transport is not None:
                transport.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
        self._reports.shutdown(wait=True)
        self._pool.shutdown(wait=True)
        self.store.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        loop = asyncio.get_running_loop()
        connection = _Connection(loop, writer)
        session: Session | None = None
        ticker: asyncio.Task[None] | None = None
        frames = FrameReader()
        counted = False
        try:
            pending: list[bytes] = []
            async with asyncio.timeout(LOGON_TIMEOUT):
                while not pending:
                    data = await reader.read(READ_SIZE)
                    if not data:
                        return
                    pending = frames.feed(data)
            session = self._logon_target(pending[0])
            if session is not None and session.connected:
                session = await self._when_free(session)
            if session is None:
                return
            session.attach(connection)
            self._connected += 1
            counted = True
            ticker = asyncio.create_task(self._tick(session, connection))
            while True:
                if pending:
                    if self._busy == 0 and self._connected == 1:
                        # The only session, and no session work in the pool: run it here,
                        # which saves two thread hand-offs a message (to the pool and
                        # back). With others connected, a commit must not hold up their
                        # messages -- in the pool they share the engine's group commits.
                        session.on_frames(pending)
                    else:
                        await self._in_pool(session.on_frames, pending)
                if connection.closed:
                    return
                data = await reader.read(READ_SIZE)
                if not data:
                    return
                pending = frames.feed(data)
        except (TimeoutError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            connection.closed = True
            writer.close()
            self._tasks.discard(task)
            if counted:
                self._connected -= 1
            if ticker is not None:
                ticker.cancel()
            if session is not None and session.transport is connection:
                await loop.run_in_executor(self._pool, session.detach, connection)
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _in_pool(self, fn: Callable[..., None], *args: object) -> None:
        """``fn(*args)`` on a worker thread (counted in ``_busy``)."""
        self._busy += 1
        try:
            await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)
        finally:
            self._busy -= 1

    def _logon_target(self, frame: bytes) -> Session | None:
        """The session a first message logs on to, or None (refused: the connection closes)."""
        try:
            msg = decode(frame)
        except ValueError:
            return None
        if msg.msg_type != "A" or msg.get(56) != self.sender:
            log.warning("refused a connection: not a Logon to %s (%r)", self.sender, msg)
            return None
        session = self.sessions.get(msg.get(49) or "")
        if session is None:
            log.warning("refused a Logon from %r: no such session", msg.get(49))
        return session

    async def _when_free(self, session: Session) -> Session | None:
        """A Logon for a session whose previous connection is still going (the peer closed it
        and logged on again before that connection's end was seen here): wait a bounded time
        for it to go, then refuse -- one connection per session."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TAKEOVER_WAIT_S
        while session.connected and loop.time() < deadline:
            await asyncio.sleep(0.01)
        if session.connected:
            log.warning("refused a Logon for %s: already connected", session.key)
            return None
        return session

    async def _tick(self, session: Session, connection: _Connection) -> None:
        while not connection.closed:
            await asyncio.sleep(TICK)
            if session.transport is not connection:
                return
            await self._in_pool(session.on_timer)


class AcceptorThread:
    """A FixAcceptor on its own event loop in a background thread (tests, notebooks)."""

    def __init__(self, acceptor: FixAcceptor) -> None:
        self.acceptor = acceptor
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="oms-fix-acceptor", daemon=True)

    def start(self) -> int:
        self._thread.start()
        return asyncio.run_coroutine_threadsafe(self.acceptor.start(), self._loop).result(timeout=10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.acceptor.stop(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
