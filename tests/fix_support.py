"""Test support for the FIX face: a raw FIX client built on simplefix alone (not on our
codec, so it checks our framing independently), an in-process acceptor, and a real
``python -m oms.fix.serve`` process. Every wait is bounded and waits for a message or an
event, never for time to pass."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import simplefix

import oms
from oms.engine import Engine
from oms.fix.acceptor import AcceptorThread, FixAcceptor
from oms.fix.state import SqliteSessionStore

ROOT = Path(__file__).resolve().parents[1]
WAIT = 10.0
"""Seconds any single wait may take before the test fails (never reached when things work)."""


def now() -> str:
    at = datetime.now(UTC)
    return at.strftime("%Y%m%d-%H:%M:%S.") + f"{at.microsecond // 1000:03d}"


@dataclass
class Msg:
    pairs: list[tuple[int, str]]
    raw: bytes = b""

    def get(self, tag: int) -> str | None:
        return next((v for t, v in self.pairs if t == tag), None)

    def __getitem__(self, tag: int) -> str:
        value = self.get(tag)
        if value is None:
            raise KeyError(f"tag {tag} missing from {self}")
        return value

    @property
    def type(self) -> str:
        return self.get(35) or ""

    @property
    def seq(self) -> int:
        return int(self[34])

    def __str__(self) -> str:
        return "|".join(f"{t}={v}" for t, v in self.pairs)


@dataclass
class RawClient:
    """A FIX 4.4 counterparty driven by hand: it sends what it is told, in the sequence it is told."""

    port: int
    sender: str = "CLIENT"
    target: str = "OMS"
    seq: int = 1
    sock: socket.socket = field(init=False)
    parser: simplefix.FixParser = field(init=False)
    inbox: list[Msg] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=WAIT)
        self.parser = simplefix.FixParser()

    def encode(
        self,
        msg_type: str,
        body: list[tuple[int, str]] = (),  # type: ignore[assignment]
        *,
        seq: int | None = None,
        poss_dup: bool = False,
        sender: str | None = None,
        target: str | None = None,
    ) -> bytes:
        if seq is None:
            seq, self.seq = self.seq, self.seq + 1
        m = simplefix.FixMessage()
        m.append_pair(8, "FIX.4.4", header=True)
        m.append_pair(35, msg_type, header=True)
        m.append_pair(49, sender or self.sender, header=True)
        m.append_pair(56, target or self.target, header=True)
        m.append_pair(34, str(seq), header=True)
        if poss_dup:
            m.append_pair(43, "Y", header=True)
        m.append_pair(52, now(), header=True)
        if poss_dup:
            m.append_pair(122, now(), header=True)
        for tag, value in body:
            m.append_pair(tag, value)
        data: bytes = m.encode()
        return data

    def send(self, msg_type: str, body: list[tuple[int, str]] = (), **kw: object) -> None:  # type: ignore[assignment]
        self.sock.sendall(self.encode(msg_type, body, **kw))  # type: ignore[arg-type]

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def logon(self, heartbeat: int = 30, *, reset: bool = False, seq: int | None = None) -> Msg:
        body = [(98, "0"), (108, str(heartbeat))] + ([(141, "Y")] if reset else [])
        if reset:
            self.seq = 1
        self.send("A", body, seq=seq)
        return self.expect("A")

    def next(self, timeout: float = WAIT) -> Msg:
        """The next message from the acceptor (fails the test after ``timeout``)."""
        self.sock.settimeout(timeout)
        while True:
            m = self.parser.get_message()
            if m is not None:
                msg = Msg([(int(t), v.decode()) for t, v in m.pairs])
                self.inbox.append(msg)
                return msg
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the acceptor closed the connection")
            self.parser.append_buffer(data)

    def expect(self, msg_type: str, *, skip: tuple[str, ...] = ("0",), timeout: float = WAIT) -> Msg:
        """The next message of ``msg_type``, skipping Heartbeats (or ``skip``); fails on anything else."""
        while True:
            msg = self.next(timeout)
            if msg.type == msg_type:
                return msg
            assert msg.type in skip, f"expected 35={msg_type}, got {msg}"

    def heartbeat_for(self, test_id: str, timeout: float = WAIT) -> Msg:
        """The Heartbeat answering TestRequest ``test_id``, answering the acceptor's TestRequests meanwhile."""
        while True:
            msg = self.next(timeout)
            if msg.type == "1":
                self.send("0", [(112, msg[112])])
            elif msg.type == "0" and msg.get(112) == test_id:
                return msg
            else:
                assert msg.type == "0", f"expected a Heartbeat, got {msg}"

    def closed_by_peer(self, timeout: float = WAIT) -> bool:
        """True once the acceptor closes the connection (messages before that are kept in ``inbox``)."""
        try:
            while True:
                self.next(timeout)
        except (ConnectionError, OSError) as e:
            return not isinstance(e, TimeoutError)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def new_order(clordid: str, *, symbol: str = "INFY", side: str = "1", qty: str = "100", price: str | None = "1500.25",
              ord_type: str = "2") -> list[tuple[int, str]]:  # fmt: skip
    body = [(11, clordid), (55, symbol), (54, side), (38, qty), (40, ord_type), (60, now())]
    return body + ([(44, price)] if price is not None else [])


@contextlib.contextmanager
def running_acceptor(
    engine: Engine | None = None, store_path: str = ":memory:", targets: tuple[str, ...] = ("CLIENT",)
) -> Iterator[FixAcceptor]:
    """An acceptor in a thread of this process, over ``engine`` (a fresh in-memory one by default)."""
    owned = engine is None
    engine = engine or oms.open(":memory:", clock=oms.SimulatedClock())
    acceptor = FixAcceptor(engine, sender="OMS", targets=targets, store=SqliteSessionStore(store_path))
    runner = AcceptorThread(acceptor)
    runner.start()
    try:
        yield acceptor
    finally:
        runner.stop()
        if owned:
            engine.close()


class ServeProcess:
    """``python -m oms.fix.serve`` on a database, on a free port it prints."""

    def __init__(self, db: Path, *targets: str, port: int = 0) -> None:
        argv = [sys.executable, "-m", "oms.fix.serve", "--db", str(db), "--fix-port", str(port), "--sender", "OMS"]
        for target in targets or ("CLIENT",):
            argv += ["--target", target]
        self.proc = subprocess.Popen(argv, cwd=ROOT, stderr=subprocess.PIPE, text=True, env={**os.environ})
        self.lines: list[str] = []
        self._port: int | None = None
        self._ready = threading.Event()
        self._drainer = threading.Thread(target=self._drain, daemon=True)
        self._drainer.start()
        if not self._ready.wait(60) or self._port is None:
            self.kill()
            raise AssertionError("the FIX server did not start:\n" + "".join(self.lines))

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)
            found = re.search(r"fix://127\.0\.0\.1:(\d+)", line)
            if found:
                self._port = int(found.group(1))
                self._ready.set()
        self._ready.set()

    @property
    def port(self) -> int:
        assert self._port is not None
        return self._port

    def _reap(self) -> int:
        code = self.proc.wait(timeout=60)
        self._drainer.join(timeout=10)
        assert self.proc.stderr is not None
        self.proc.stderr.close()
        return code

    def terminate(self) -> int:
        """SIGTERM; the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self._reap()

    def kill(self) -> None:
        """SIGKILL (kill -9)."""
        if self.proc.poll() is None:
            self.proc.kill()
        self._reap()
