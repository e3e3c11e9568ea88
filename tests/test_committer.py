"""The API's group commit (oms.committer) on a real event loop and a real DuckDB file:
commands submitted in the same loop turn share one commit, each waiter gets its own
answer, and nothing is answered before it is committed."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

import oms
from conftest import counting_appends
from oms.commands import Command
from oms.committer import Committer
from oms.engine import Engine

CREATE = {"symbol": "INFY", "side": "BUY", "quantity": 100, "price": "1500.25"}


def hold_the_store(gw: Engine) -> tuple[threading.Event, threading.Thread]:
    """Another thread holds ``gw``'s store (a long read) until the event is set."""
    release = threading.Event()
    holding = threading.Event()

    def long_read() -> None:
        with gw._store.lock:
            holding.set()
            release.wait(10)

    reader = threading.Thread(target=long_read)
    reader.start()
    holding.wait(10)
    return release, reader


def test_commands_of_one_loop_turn_share_one_commit(db_path: Path) -> None:
    with oms.open(db_path, clock=oms.SimulatedClock()) as engine:
        appends = counting_appends(engine)

        async def main() -> list[oms.Order]:
            committer = Committer(engine)
            creates = (committer.submit(Command(oms.Action.CREATE, None, CREATE)) for _ in range(20))
            return await asyncio.gather(*creates)

        orders = asyncio.run(main())
        assert appends == [20]
        assert [o.order_id for o in orders] == list(range(1, 21))
    with oms.open(db_path) as reopened:  # answered means committed
        assert len(reopened.orders()) == 20


def test_each_waiter_gets_its_own_answer_and_refusals_are_logged(gw: Engine) -> None:
    order = gw.create(**CREATE)  # type: ignore[arg-type]

    async def main() -> list[Any]:
        committer = Committer(gw)
        commands = [
            Command(oms.Action.CANCEL, order.order_id),
            Command(oms.Action.EXECUTE, order.order_id),  # refused: cancelled just before, same batch
            Command(oms.Action.MODIFY, 99, {"price": "1"}),  # refused: no such order
            Command(oms.Action.CREATE, None, {**CREATE, "quantity": 0}),  # refused: bad quantity
        ]
        return await asyncio.gather(*(committer.submit(c) for c in commands), return_exceptions=True)

    cancelled, refused_execute, not_found, invalid = asyncio.run(main())
    assert cancelled.status is oms.Status.CANCELLED
    assert isinstance(refused_execute, oms.InvalidTransition)
    assert isinstance(not_found, oms.OrderNotFound)
    assert isinstance(invalid, oms.ValidationError) and invalid.errors[0]["field"] == "quantity"
    events = gw.events()
    assert [(e.action.value, e.accepted, e.reason) for e in events[1:]] == [
        ("cancel", True, None),
        ("execute", False, "INVALID_TRANSITION"),
        ("modify", False, "ORDER_NOT_FOUND"),
        ("create", False, "VALIDATION_ERROR"),
    ]


def test_a_waiter_that_goes_away_does_not_undo_its_command(gw: Engine) -> None:
    async def main() -> None:
        committer = Committer(gw)
        task = asyncio.ensure_future(committer.submit(Command(oms.Action.CREATE, None, CREATE)))
        await asyncio.sleep(0)  # the command is queued for the next turn
        task.cancel()  # the client disconnected
        await asyncio.sleep(0.01)
        assert task.cancelled()

    asyncio.run(main())
    assert [o.order_id for o in gw.orders()] == [1]


def test_close_commits_what_waits_and_refuses_what_comes_after(gw: Engine) -> None:
    async def main() -> None:
        committer = Committer(gw)
        waiting = asyncio.ensure_future(committer.submit(Command(oms.Action.CREATE, None, CREATE)))
        await asyncio.sleep(0)
        committer.close()
        assert (await waiting).order_id == 1
        with pytest.raises(oms.StoreError, match="shutting down"):
            await committer.submit(Command(oms.Action.CREATE, None, CREATE))

    asyncio.run(main())
    assert len(gw.orders()) == 1


def test_a_failing_commit_answers_every_waiter_with_a_store_error(gw: Engine) -> None:
    def broken_append(rows: Any) -> None:
        raise oms.StoreError("disk full")

    gw._store.append = broken_append  # type: ignore[method-assign]

    async def main() -> list[Any]:
        committer = Committer(gw)
        creates = (committer.submit(Command(oms.Action.CREATE, None, CREATE)) for _ in range(3))
        return await asyncio.gather(*creates, return_exceptions=True)

    answers = asyncio.run(main())
    assert all(isinstance(a, oms.StoreError) and "disk full" in str(a) for a in answers)
    del gw._store.append  # the real one again
    assert gw.orders() == [] and gw.create(**CREATE).order_id == 1  # type: ignore[arg-type]


def test_close_commits_a_waiting_command_even_while_the_flush_gathers_more(gw: Engine) -> None:
    async def main() -> None:
        committer = Committer(gw)
        await asyncio.gather(*(committer.submit(Command(oms.Action.CREATE, None, CREATE)) for _ in range(2)))
        # The last batch had 2 commands, so a flush now waits for a second one to join.
        waiting = asyncio.ensure_future(committer.submit(Command(oms.Action.CREATE, None, CREATE)))
        await asyncio.sleep(0)
        committer.close()
        assert len(gw.orders()) == 3  # committed by close() itself, not by a later loop turn
        assert (await waiting).order_id == 3

    asyncio.run(main())
    assert [o.order_id for o in gw.orders()] == [1, 2, 3]


def test_while_another_thread_holds_the_database_the_loop_keeps_running(gw: Engine) -> None:
    """A long read elsewhere holds the store; the batch waits in the worker thread, not
    on the event loop, and is committed once the read ends."""
    release, reader = hold_the_store(gw)
    assert gw.try_submit_many([Command(oms.Action.CREATE, None, CREATE)]) is None  # busy: nothing done

    async def main() -> tuple[oms.Order, int]:
        committer = Committer(gw)
        command = asyncio.ensure_future(committer.submit(Command(oms.Action.CREATE, None, CREATE)))
        ticks = 0
        while ticks < 20:  # the loop turns while the command waits for the database
            await asyncio.sleep(0.005)
            ticks += 1
        assert not command.done()
        release.set()
        order = await asyncio.wait_for(command, 10)
        committer.close()
        return order, ticks

    order, ticks = asyncio.run(main())
    reader.join(10)
    assert ticks == 20 and order.order_id == 1
    assert [o.order_id for o in gw.orders()] == [1]


def test_what_arrives_while_the_worker_commits_is_its_next_batch_whatever_the_loop_turns(gw: Engine) -> None:
    """A store the loop cannot commit on (busy here; PostgreSQL always): the first batch
    goes to the worker, and every command of the later loop turns waits in one backlog
    that becomes the worker's next batch -- one commit, not one per loop turn."""
    release, reader = hold_the_store(gw)
    appends = counting_appends(gw)

    async def main() -> list[int]:
        committer = Committer(gw)
        waiting = []
        for _ in range(5):  # five loop turns, one command each
            waiting.append(asyncio.ensure_future(committer.submit(Command(oms.Action.CREATE, None, CREATE))))
            await asyncio.sleep(0.005)
        release.set()
        orders = await asyncio.wait_for(asyncio.gather(*waiting), 10)
        committer.close()
        return [o.order_id for o in orders]

    assert asyncio.run(main()) == [1, 2, 3, 4, 5]
    reader.join(10)
    assert appends == [1, 4]  # the first alone (it was in the worker), then the backlog together
    assert [o.order_id for o in gw.orders()] == [1, 2, 3, 4, 5]


def test_close_commits_the_backlog_after_the_batch_in_the_worker(gw: Engine) -> None:
    release, reader = hold_the_store(gw)

    async def main() -> list[int]:
        committer = Committer(gw)
        first = asyncio.ensure_future(committer.submit(Command(oms.Action.CREATE, None, CREATE)))
        await asyncio.sleep(0.005)  # in the worker, waiting for the store
        backlog = asyncio.ensure_future(committer.submit(Command(oms.Action.CREATE, None, CREATE)))
        await asyncio.sleep(0.005)  # in the backlog
        threading.Timer(0.05, release.set).start()
        committer.close()  # waits for both, in order
        return [(await first).order_id, (await backlog).order_id]

    assert asyncio.run(main()) == [1, 2]
    reader.join(10)
    assert [o.order_id for o in gw.orders()] == [1, 2]


def test_a_batch_that_would_fold_the_projection_is_committed_off_the_loop(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("oms.engine.FOLD_EVERY", 3)
    with oms.open(db_path) as engine:
        offered: list[object] = []
        real_try = engine.try_submit_many

        def recording_try(commands: list[Command]) -> Any:
            offered.append(answer := real_try(commands))
            return answer

        engine.try_submit_many = recording_try  # type: ignore[method-assign]

        async def main() -> list[int]:
            committer = Committer(engine)
            ids = [(await committer.submit(Command(oms.Action.CREATE, None, CREATE))).order_id for _ in range(4)]
            committer.close()
            return ids

        assert asyncio.run(main()) == [1, 2, 3, 4]
        assert [answer is None for answer in offered] == [False, False, True, False]  # the third folds
        assert engine._folded_seq == 3
        assert [o.order_id for o in engine.orders()] == [1, 2, 3, 4]


def test_a_committer_serves_one_event_loop(gw: Engine) -> None:
    committer = Committer(gw)
    assert asyncio.run(committer.submit(Command(oms.Action.CREATE, None, CREATE))).order_id == 1
    with pytest.raises(RuntimeError, match="one event loop"):
        asyncio.run(committer.submit(Command(oms.Action.CREATE, None, CREATE)))
    committer.close()
    assert len(gw.orders()) == 1


def test_try_submit_many_never_folds_even_when_queued_commands_of_other_threads_make_it_due(
    gw: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("oms.engine.FOLD_EVERY", 3)
    others = gw._enqueue([Command(oms.Action.CREATE, None, CREATE)] * 2)  # queued, their threads not yet in
    answers = gw.try_submit_many([Command(oms.Action.CREATE, None, CREATE)])
    assert answers is not None and all(t.done for t in others)  # one commit for all three
    assert gw._seq == 3 and gw._folded_seq == 0  # the fold is due but was left to a blocking call
    assert gw.try_submit_many([Command(oms.Action.CREATE, None, CREATE)]) is None
    gw.submit_many([Command(oms.Action.CREATE, None, CREATE)])
    assert gw._folded_seq == 4 and len(gw.orders()) == 4
