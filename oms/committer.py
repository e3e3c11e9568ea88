"""Group commit for an asyncio server, once per turn of the event loop.

Adapter layer. Request handlers hand their command to the committer and await the
answer. The first command of a turn schedules one flush for the next turn; every
handler that reaches the committer before it runs joins that batch, and the batch is
committed in one engine call (one INSERT, one commit) on the event-loop thread. The
futures are answered only after the commit, so a 2xx still means "committed".

This is the shape of Redis's ``appendfsync always``: the writes of one loop iteration are
made durable together before any of their replies go out. Committing on the loop thread
blocks it for the length of one commit (~0.5-1 ms), but requests arriving meanwhile wait
in their sockets and join the next batch, and a request saves the two thread hand-offs
(to a writer thread and back) that cost ~0.15 ms each way here -- with one client the
latency is the commit plus HTTP, nothing else; with many, batches grow with the load.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from oms.commands import Command
from oms.engine import Engine
from oms.errors import StoreError
from oms.model import Order

GATHER_FOR = 0.0003
"""Seconds a flush may wait for the rest of a busy moment (see ``Committer._flush``)."""


class Committer:
    """Batches the commands of one event-loop turn into one commit of ``engine``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._pending: list[tuple[Command, asyncio.Future[Order]]] = []
        self._scheduled = False
        self._closed = False
        self._first_at = 0.0
        self._expected = 1  # the size of the last batch: how many commands come together

    async def submit(self, command: Command) -> Order:
        """Commit ``command``; returns the order once committed, or raises its refusal."""
        if self._closed:
            raise StoreError("the server is shutting down")
        loop = asyncio.get_running_loop()
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
        batch, self._pending = self._pending, []
        if not batch:  # close() committed them already
            return
        self._expected = len(batch)
        outcomes: list[Any]
        try:
            outcomes = self.engine.submit_many([command for command, _ in batch])
        except BaseException as e:  # answer every waiter, whatever happened
            outcomes = [e] * len(batch)
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if future.cancelled():  # the client went away; the command stands
                continue
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

    def close(self) -> None:
        """Refuse new commands and commit any still waiting for their turn."""
        self._closed = True
        if self._pending:
            self._flush()
