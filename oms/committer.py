"""Group commit for an asyncio server: request handlers hand commands to one writer
thread and await the answer; the thread takes every command waiting and commits them
in one engine batch (one INSERT, one commit).

Adapter layer. Compared with a thread-pool call per request, a request costs one
wake-up of the writer instead of a pool hop, and batches form from whatever queued up
while the previous commit ran.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from oms.commands import Command
from oms.engine import Engine
from oms.errors import StoreError
from oms.model import Order


def _settle(future: asyncio.Future[Order], outcome: Order | BaseException) -> None:
    if future.cancelled():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


class Committer:
    """One writer thread in front of one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._pending: list[tuple[Command, asyncio.Future[Order], asyncio.AbstractEventLoop]] = []
        self._ready = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="oms-committer", daemon=True)
        self._thread.start()

    async def submit(self, command: Command) -> Order:
        """Commit ``command``; returns the order once committed, or raises its refusal."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Order] = loop.create_future()
        with self._ready:
            if self._closed:
                raise StoreError("the server is shutting down")
            self._pending.append((command, future, loop))
            self._ready.notify()
        return await future

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._pending and not self._closed:
                    self._ready.wait()
                if not self._pending:
                    return
                batch, self._pending = self._pending, []
            outcomes: list[Any]
            try:
                outcomes = self.engine.submit_many([command for command, _, _ in batch])
            except BaseException as e:  # answer every waiter, whatever happened
                outcomes = [e] * len(batch)
            for (_, future, loop), outcome in zip(batch, outcomes, strict=True):
                loop.call_soon_threadsafe(_settle, future, outcome)

    def close(self) -> None:
        """Finish what is queued, then stop the thread."""
        with self._ready:
            self._closed = True
            self._ready.notify()
        self._thread.join(timeout=30)
