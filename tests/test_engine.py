"""The embedded gateway: persistence, ids, events, replay, threads, the clock."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

import oms
from oms import engine as engine_module
from oms.engine import Engine

GOOD = {"symbol": "INFY", "side": "BUY", "quantity": 100, "price": "1500.25"}


def test_ids_start_at_one_and_continue_after_reopen(db_path: Path) -> None:
    with oms.open(db_path) as gw:
        assert [gw.create(**GOOD).order_id for _ in range(3)] == [1, 2, 3]
        gw.cancel(2)
    with oms.open(db_path) as gw:
        assert gw.create(**GOOD).order_id == 4
        assert [(o.order_id, o.status) for o in gw.orders()] == [
            (1, oms.Status.NEW),
            (2, oms.Status.CANCELLED),
            (3, oms.Status.NEW),
            (4, oms.Status.NEW),
        ]


def test_every_order_and_event_survives_a_reopen_exactly(db_path: Path) -> None:
    with oms.open(db_path, clock=oms.SimulatedClock()) as gw:
        a = gw.create(**GOOD, client_order_id="C-1")
        gw.modify(a.order_id, quantity=40, price="1499.75")
        b = gw.create(symbol="TCS", side="SELL", quantity=5, order_type="MARKET")
        gw.execute(b.order_id, price="3000.5")
        with pytest.raises(oms.InvalidTransition):
            gw.cancel(b.order_id)
        orders, events = gw.orders(), gw.events()
    with oms.open(db_path) as gw:
        assert gw.orders() == orders
        assert gw.events() == events
        with pytest.raises(oms.DuplicateClientOrderId):
            gw.create(**GOOD, client_order_id="C-1")


def test_the_projection_equals_the_replay_of_the_event_log(gw: Engine) -> None:
    for i in range(30):
        order = gw.create(symbol=f"S{i % 4}", side="BUY" if i % 2 else "SELL", quantity=i + 1, price=f"{100 + i}.5")
        if i % 3 == 0:
            gw.modify(order.order_id, quantity=i + 2)
        if i % 5 == 0:
            gw.cancel(order.order_id) if order.status is oms.Status.NEW and i % 3 else None
        if i % 7 == 0:
            gw.execute(order.order_id)
    assert gw.replay() == gw.orders()


def test_the_projection_stays_right_across_folds(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_module, "FOLD_EVERY", 7)
    with oms.open(db_path) as gw:
        ids = [gw.create(**GOOD).order_id for _ in range(20)]
        for order_id in ids[::2]:
            gw.modify(order_id, quantity=1)
        for order_id in ids[::3]:
            gw.execute(order_id)
        expected = gw.orders()
        assert gw.replay() == expected
        folded = gw.arrow("SELECT folded_seq FROM projection_state").column(0)[0].as_py()
        assert folded > 0, "the snapshot was never folded forward"
    with oms.open(db_path) as gw:
        assert gw.orders() == expected


def test_events_record_accepted_and_refused_commands_oldest_first(gw: Engine) -> None:
    order = gw.create(**GOOD)
    gw.execute(order.order_id, price="1500")
    with pytest.raises(oms.InvalidTransition):
        gw.modify(order.order_id, quantity=1)
    events = gw.events(order.order_id)
    assert [(e.seq, e.action.value, e.from_status, e.to_status, e.accepted, e.reason) for e in events] == [
        (1, "create", None, oms.Status.NEW, True, None),
        (2, "execute", oms.Status.NEW, oms.Status.EXECUTED, True, None),
        (3, "modify", oms.Status.EXECUTED, None, False, "INVALID_TRANSITION"),
    ]
    assert events[1].changes == {"executed_quantity": 100, "executed_price": Decimal("1500")}
    assert events[2].request == {"quantity": 1}
    with pytest.raises(oms.OrderNotFound):
        gw.events(99)


def test_the_simulated_clock_stamps_each_command_one_step_apart(gw: Engine) -> None:
    order = gw.create(**GOOD)
    modified = gw.modify(order.order_id, quantity=5)
    start = datetime(2026, 1, 5, 9, 15, tzinfo=UTC)
    assert (order.created_at, modified.updated_at, modified.created_at) == (start, start + timedelta(seconds=1), start)
    assert oms.model.format_ts(modified.updated_at) == "2026-01-05T09:15:01.000Z"


def test_the_wall_clock_is_utc_with_milliseconds() -> None:
    now = oms.SystemClock()()
    assert now.tzinfo is UTC and now.microsecond % 1000 == 0


def test_concurrent_cancel_and_execute_on_one_new_order_have_exactly_one_winner(gw: Engine) -> None:
    for _ in range(20):
        order = gw.create(**GOOD)
        barrier = threading.Barrier(8)
        outcomes: list[str] = []

        def race(
            action: str,
            order_id: int = order.order_id,
            barrier: threading.Barrier = barrier,
            outcomes: list[str] = outcomes,
        ) -> None:
            barrier.wait()
            try:
                (gw.cancel(order_id) if action == "cancel" else gw.execute(order_id))
                outcomes.append("won")
            except oms.InvalidTransition:
                outcomes.append("refused")

        threads = [threading.Thread(target=race, args=("cancel" if i % 2 else "execute",)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=10)
        assert sorted(outcomes) == ["refused"] * 7 + ["won"]
        terminal = [e for e in gw.events(order.order_id) if e.accepted and e.action is not oms.Action.CREATE]
        assert len(terminal) == 1


def test_parallel_creates_from_many_threads_all_get_unique_ids(gw: Engine) -> None:
    made: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(25):
            order_id = gw.create(**GOOD).order_id
            with lock:
                made.append(order_id)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(made) == list(range(1, 201))
    assert [o.order_id for o in gw.orders()] == list(range(1, 201))
    assert [e.seq for e in gw.events()] == list(range(1, 201))


def test_a_file_cannot_be_opened_twice_in_one_process(db_path: Path) -> None:
    with oms.open(db_path), pytest.raises(oms.StoreError) as caught:
        oms.open(db_path)
    assert str(db_path) in caught.value.message and "already open" in caught.value.message
    with oms.open(db_path) as gw:  # released on close
        assert gw.orders() == []


def test_a_closed_gateway_refuses_commands_clearly(db_path: Path) -> None:
    gw = oms.open(db_path)
    gw.close()
    gw.close()  # idempotent
    with pytest.raises(oms.StoreError, match="closed"):
        gw.create(**GOOD)


def test_orders_filter_by_status_and_symbol_and_refuse_bad_filters(gw: Engine) -> None:
    a = gw.create(**GOOD)
    gw.create(symbol="TCS", side="SELL", quantity=1, price=1)
    gw.cancel(a.order_id)
    assert [o.order_id for o in gw.orders(status="CANCELLED")] == [1]
    assert [o.order_id for o in gw.orders(symbol="tcs")] == [2]
    assert gw.orders(status="NEW", symbol="INFY") == []
    with pytest.raises(oms.ValidationError) as caught:
        gw.orders(status="OPEN")
    assert caught.value.fields == ["status"]


def test_cache_misses_read_the_order_back_from_the_store(db_path: Path) -> None:
    with oms.engine.Engine(db_path, cache_size=2) as gw:
        ids = [gw.create(**GOOD).order_id for _ in range(10)]
        assert gw.execute(ids[0]).status is oms.Status.EXECUTED  # evicted long ago
        with pytest.raises(oms.InvalidTransition):
            gw.cancel(ids[0])
        assert gw.replay() == gw.orders()


class BrokenClock:
    """A clock that fails on its third reading: a bug inside a batch, not a refusal."""

    def __init__(self) -> None:
        self.readings = 0

    def __call__(self) -> datetime:
        self.readings += 1
        if self.readings == 3:
            raise RuntimeError("clock failed")
        return datetime(2026, 1, 5, 9, 15, tzinfo=UTC)


def test_a_failure_inside_a_batch_answers_every_caller_and_records_nothing_of_it() -> None:
    with oms.open(":memory:", clock=BrokenClock()) as gw:
        gw.create(**GOOD)
        gw.create(**GOOD)
        with pytest.raises(oms.OMSError) as caught:
            gw.create(**GOOD)
        assert caught.value.code == "INTERNAL_ERROR" and isinstance(caught.value.__cause__, RuntimeError)
        assert [o.order_id for o in gw.orders()] == [1, 2]
        assert gw.create(**GOOD).order_id == 3  # the engine goes on, ids stay dense
        assert [e.seq for e in gw.events()] == [1, 2, 3]


def test_submit_many_commits_a_batch_and_answers_each_command_in_order(gw: Engine) -> None:
    from oms.commands import Command

    outcomes = gw.submit_many(
        [
            Command(oms.Action.CREATE, None, dict(GOOD)),
            Command(oms.Action.CANCEL, 1),
            Command(oms.Action.EXECUTE, 1),  # refused: the cancel before it in the same batch won
            Command(oms.Action.CREATE, None, {**GOOD, "quantity": 0}),
        ]
    )
    assert [type(o).__name__ for o in outcomes] == ["Order", "Order", "InvalidTransition", "ValidationError"]
    assert gw.get(1).status is oms.Status.CANCELLED
    assert [(e.seq, e.accepted) for e in gw.events()] == [(1, True), (2, True), (3, False), (4, False)]
