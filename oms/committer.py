"""Group commit for an asyncio server, once per turn of the event loop.

Adapter layer. Request handlers hand their command to the committer of their event loop
and await the answer. The first command of a turn schedules one flush; every handler
that reaches the committer before it runs joins that batch, and the batch is committed
in one engine call (one INSERT, one commit). The futures are answered only after the
commit, so a 2xx still means "committed".

This is the shape of Redis's ``appendfsync always``: the writes of one loop iteration are
made durable together before any of their replies go out. The commit runs on the loop
thread itself when the engine is free (``Engine.try_submit_many``): that saves the two
thread hand-offs (to a writer thread and back), ~0.15 ms a request measured here, and
requests arriving meanwhile wait in their sockets and join the next batch. When the
engine is busy -- another thread reading or writing the database, a fold of the
projection due, or a store across the network (PostgreSQL), which the loop must never
wait on -- the batch goes to the committer's one worker thread instead, so the loop
keeps serving. While the worker commits, what the loop gathers waits in one backlog,
and the worker takes the whole backlog as its next batch: one commit for every command
that arrived during the previous one, however many loop turns brought them. So batches
stay in order, and a slow commit makes the next batch bigger, not the queue longer.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from oms.commands import Command
from oms.engine import Engine
from oms.errors import StoreError
from oms.model import Order

GATHER_FOR = 0.0003
"""Seconds a flush may wait for the rest of a busy moment (see ``Committer._flush``)."""

_Batch = list[tuple[Command, "asyncio.Future[Order]"]]


class Committer:
    """Batches the commands of one event loop's turns into commits of ``engine``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # A weak reference: the API files committers under their loop in a WeakKeyDictionary,
        # so a committer must not keep its loop alive (nor, through it, its worker thread).
        self._loop: weakref.ref[asyncio.AbstractEventLoop] | None = None
        self._pending: _Batch = []
        self._scheduled = False
        self._closed = False
        self._first_at = 0.0
        self._expected = 1  # the size of the last batch: how many commands come together
        self._handed_off = False  # a batch is in the worker thread, not answered yet
        self._backlog: _Batch = []  # what waits for the worker to finish it
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="oms-commit")

    async def submit(self, command: Command) -> Order:
        """Commit ``command``; returns the order once committed, or raises its refusal."""
        if self._closed:
            raise StoreError("the server is shutting down")
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = weakref.ref(loop)
        elif loop is not self._loop():
            raise RuntimeError("a Committer serves one event loop; make one per loop")
        future: asyncio.Future[Order] = loop.create_future()
        self._pending.append((command, future))
        if not self._scheduled:
            self._scheduled, self._first_at = True, time.perf_counter()
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        # Like PostgreSQL's commit_delay: when commands have been arriving together, give
        # the rest of them a few loop turns (at most GATHER_FOR) to join this commit,
        # instead of committing the first alone while the others wait a whole commit.
        # One client at a time never waits.
        if len(self._pending) < self._expected and time.perf_counter() - self._first_at < GATHER_FOR:
            asyncio.get_running_loop().call_soon(self._flush)
            return
        self._scheduled = False
        batch = self._take()
        if not batch:  # close() committed them already
            return
        outcomes: list[Any] | None = None
        if not self._handed_off:
            try:
                outcomes = self.engine.try_submit_many([command for command, _ in batch])
            except Exception as e:  # answer every waiter, whatever happened
                outcomes = [e] * len(batch)
        if outcomes is None:  # the engine is busy: let the worker wait for it, not the loop
            self._backlog.extend(batch)
            if not self._handed_off:
                self._hand_off()
            return
        _answer(batch, outcomes)

    def _hand_off(self) -> None:
        """Give the worker the whole backlog as one batch."""
        batch, self._backlog = self._backlog, []
        self._handed_off = True
        done = asyncio.get_running_loop().run_in_executor(self._worker, self._submit_waiting, batch)
        done.add_done_callback(lambda finished: self._answer_handed_off(batch, finished))

    def _take(self) -> _Batch:
        batch, self._pending = self._pending, []
        if batch:
            self._expected = len(batch)
        return batch

    def _submit_waiting(self, batch: _Batch) -> list[Any]:
        try:
            return list(self.engine.submit_many([command for command, _ in batch]))
        except Exception as e:
            return [e] * len(batch)

    def _answer_handed_off(self, batch: _Batch, finished: asyncio.Future[list[Any]]) -> None:
        self._handed_off = False
        try:
            outcomes = finished.result()
        except BaseException as e:  # the worker was stopped: nothing is known of the batch
            outcomes = [StoreError(f"commands not confirmed: {e!r}")] * len(batch)
        _answer(batch, outcomes)
        if self._backlog and not self._closed:
            self._hand_off()

    def close(self) -> None:
        """Refuse new commands; commit those still waiting for their turn (after any the
        worker holds), and stop the worker."""
        self._closed = True
        batch, self._backlog = self._backlog + self._take(), []
        if batch:
            committed: Future[list[Any]] = self._worker.submit(self._submit_waiting, batch)
            _answer(batch, committed.result())
        self._worker.shutdown(wait=True)


def _answer(batch: _Batch, outcomes: list[Any]) -> None:
    for (_, future), outcome in zip(batch, outcomes, strict=True):
        if future.done():  # cancelled: the client went away; the command stands
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
