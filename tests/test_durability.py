"""An acknowledged command survives kill -9 of the process that wrote it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import oms

WRITER = """
import json, sys, oms
gw = oms.open(sys.argv[1])
def ack(order):
    print(json.dumps([order.order_id, order.status.value, order.version]), flush=True)
for i in range(1_000_000):  # far more than the test waits for: it is killed mid-stream
    order = gw.create(symbol="INFY", side="BUY" if i % 2 else "SELL", quantity=10 + i % 7, price="100.25")
    ack(order)
    if i % 3 == 0:
        ack(gw.modify(order.order_id, quantity=5))
    if i % 4 == 0:
        ack(gw.execute(order.order_id))
    elif i % 5 == 0 and i % 3:  # cancel only while NEW
        ack(gw.cancel(order.order_id))
"""

ACKS_BEFORE_KILL = 300


def run_and_kill(db_path: Path) -> dict[int, tuple[str, int]]:
    """Start a writer, SIGKILL it mid-stream, return its acknowledged (status, version) per order."""
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(db_path)], stdout=subprocess.PIPE, text=True)
    acked: dict[int, tuple[str, int]] = {}
    deadline = time.monotonic() + 60
    try:
        assert writer.stdout is not None
        while len(acked) < ACKS_BEFORE_KILL and time.monotonic() < deadline:
            line = writer.stdout.readline()
            assert line, "the writer died before it was killed"
            order_id, status, version = json.loads(line)
            acked[order_id] = (status, version)
        os.kill(writer.pid, signal.SIGKILL)
        for line in writer.stdout:  # acknowledgements already printed before the kill count too
            if line.endswith("\n"):
                order_id, status, version = json.loads(line)
                acked[order_id] = (status, version)
    finally:
        writer.kill()
        writer.wait(timeout=10)
        if writer.stdout:
            writer.stdout.close()
    assert writer.returncode == -signal.SIGKILL
    assert len(acked) >= ACKS_BEFORE_KILL, "the writer was too slow to test anything"
    return acked


def assert_nothing_half_written(gw: oms.engine.Engine) -> None:
    events = gw.events()
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert gw.replay() == gw.orders()
    for order in gw.orders():
        versions = [e.version for e in gw.events(order.order_id) if e.accepted]
        assert versions == list(range(1, order.version + 1))


def test_every_acknowledged_command_survives_kill_9_and_nothing_is_half_written(db_path: Path) -> None:
    acked = run_and_kill(db_path)
    with oms.open(db_path) as gw:
        stored = {o.order_id: o for o in gw.orders()}
        for order_id, (status, version) in acked.items():
            order = stored[order_id]
            # The writer may have committed one more command than it managed to print.
            assert order.version >= version
            if order.version == version:
                assert order.status.value == status
        assert_nothing_half_written(gw)
        next_id = gw.create(symbol="INFY", side="BUY", quantity=1, price=1).order_id
        assert next_id == max(stored) + 1


def test_a_database_killed_twice_reopens_and_continues(db_path: Path) -> None:
    first = run_and_kill(db_path)
    second = run_and_kill(db_path)
    assert min(second) > max(first)  # ids continue after the first crash
    with oms.open(db_path) as gw:
        assert_nothing_half_written(gw)
        assert {o.order_id for o in gw.orders()} >= set(first) | set(second)
