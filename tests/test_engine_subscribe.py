"""``Engine.subscribe``: every commit's accepted results, from any entry point, in commit
order, off the command path -- a failing or slow subscriber never fails or delays a command,
and a subscriber may call the engine back."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest

import oms
from oms.commands import Command
from oms.engine import Engine
from oms.errors import InvalidTransition
from oms.gateway import Subscribable
from oms.lifecycle import Action, Status
from oms.model import Order

WAIT = 10.0
LIMIT = {"symbol": "INFY", "side": "BUY", "quantity": 100, "price": "1500.25"}


class Recorder:
    """A subscriber that keeps what it is given and says when it has ``n`` results."""

    def __init__(self) -> None:
        self.commits: list[list[tuple[Action, Order]]] = []
        self.threads: set[str] = set()
        self._cond = threading.Condition()

    def __call__(self, committed: list[tuple[Action, Order]]) -> None:
        with self._cond:
            self.commits.append(committed)
            self.threads.add(threading.current_thread().name)
            self._cond.notify_all()

    def results(self, n: int) -> list[tuple[Action, int, Status]]:
        with self._cond:
            assert self._cond.wait_for(lambda: sum(map(len, self.commits)) >= n, WAIT), self.commits
            return [(a, o.order_id, o.status) for commit in self.commits for a, o in commit]


@pytest.fixture
def engine() -> Iterator[Engine]:
    with oms.open(":memory:", clock=oms.SimulatedClock()) as e:
        yield e


def test_every_accepted_command_is_reported_in_commit_order_and_refusals_are_not(engine: Engine) -> None:
    assert isinstance(engine, Subscribable)
    seen = Recorder()
    engine.subscribe(seen)
    engine.create(**LIMIT)  # type: ignore[arg-type]
    engine.modify(1, quantity=5)
    with pytest.raises(InvalidTransition):
        engine.cancel(1)  # refused: MODIFIED
    engine.execute(1)
    engine.submit_many([Command(Action.CREATE, None, dict(LIMIT)), Command(Action.CANCEL, 99)])
    outcome = engine.try_submit_many([Command(Action.CANCEL, 2)])
    assert outcome is not None
    assert seen.results(5) == [
        (Action.CREATE, 1, Status.NEW), (Action.MODIFY, 1, Status.MODIFIED), (Action.EXECUTE, 1, Status.EXECUTED),
        (Action.CREATE, 2, Status.NEW), (Action.CANCEL, 2, Status.CANCELLED),
    ]  # fmt: skip
    assert seen.threads == {"oms-engine-subscribers"}  # never the caller's thread


def test_a_failing_subscriber_is_logged_and_fails_no_command(engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    def broken(committed: list[tuple[Action, Order]]) -> None:
        raise RuntimeError("subscriber defect")

    seen = Recorder()
    engine.subscribe(broken)
    engine.subscribe(seen)
    with caplog.at_level(logging.ERROR, logger="oms.engine"):
        assert engine.create(**LIMIT).status is Status.NEW  # type: ignore[arg-type]
        assert engine.execute(1).status is Status.EXECUTED
        assert [a for a, _, _ in seen.results(2)] == [Action.CREATE, Action.EXECUTE]  # the next one still runs
    assert sum("subscriber" in r.getMessage() for r in caplog.records) == 2


def test_a_blocked_subscriber_delays_no_command_and_may_call_the_engine(engine: Engine) -> None:
    release = threading.Event()
    read_back: list[Status] = []

    def slow(committed: list[tuple[Action, Order]]) -> None:
        release.wait(WAIT)
        read_back.extend(engine.get(o.order_id).status for _, o in committed)  # the engine lock is free

    engine.subscribe(slow)
    seen = Recorder()
    engine.subscribe(seen)
    for _ in range(3):
        engine.create(**LIMIT)  # type: ignore[arg-type]  # answered while the subscriber is stuck
    assert engine.cancel(2).status is Status.CANCELLED
    assert seen.commits == []
    release.set()
    assert len(seen.results(4)) == 4
    assert read_back[:1] == [Status.NEW]


def test_unsubscribe_returns_after_what_was_committed_before_it_was_delivered(engine: Engine) -> None:
    seen = Recorder()
    unsubscribe = engine.subscribe(seen)
    engine.create(**LIMIT)  # type: ignore[arg-type]
    unsubscribe()
    assert [a for commit in seen.commits for a, _ in commit] == [Action.CREATE]
    engine.create(**LIMIT)  # type: ignore[arg-type]
    probe = Recorder()
    engine.subscribe(probe)
    engine.create(**LIMIT)  # type: ignore[arg-type]
    probe.results(1)
    assert len(seen.commits) == 1


def test_closing_the_engine_delivers_what_was_committed_and_ends_the_thread(engine: Engine) -> None:
    seen = Recorder()
    engine.subscribe(seen)
    engine.create(**LIMIT)  # type: ignore[arg-type]
    engine.close()
    assert len(seen.commits) == 1
    assert engine._publisher is not None and not engine._publisher.is_alive()
    with pytest.raises(oms.StoreError):
        engine.subscribe(seen)
