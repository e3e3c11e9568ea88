"""Shared fixtures: a fresh in-memory gateway, a DuckDB file in tmp_path, a real
PostgreSQL server for the session with a fresh database per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import oms
from oms.engine import Engine


@pytest.fixture
def gw() -> Iterator[Engine]:
    """A fresh in-memory embedded gateway on the simulated clock: ids from 1."""
    with oms.open(":memory:", clock=oms.SimulatedClock()) as gateway:
        yield gateway


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where a test's DuckDB file goes (not created yet)."""
    return tmp_path / "oms.duckdb"


def counting_appends(engine: Engine) -> list[int]:
    """Record the number of rows of every commit the engine makes."""
    appends: list[int] = []
    real_append = engine._store.append

    def append(rows: Any) -> None:
        real_append(rows)
        appends.append(len(rows))

    engine._store.append = append  # type: ignore[method-assign]
    return appends


# ---- REST API: a TestClient, an in-process uvicorn server, real `oms serve` processes ----

import os  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable  # noqa: E402

import httpx  # noqa: E402

with warnings.catch_warnings():
    # Starlette would rather have httpx2; the TestClient works with httpx all the same.
    from starlette.exceptions import StarletteDeprecationWarning

    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody is listening on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def client(gw: Engine) -> Iterator[TestClient]:
    """The REST API over the fresh in-memory gateway ``gw``, through Starlette's TestClient."""
    from oms.api import create_app

    with TestClient(create_app(gw)) as test_client:
        yield test_client


class ThreadedServer:
    """A real uvicorn server on 127.0.0.1 in a thread of this process, over a gateway."""

    def __init__(self, gateway: oms.gateway.Gateway, token: str | None = None) -> None:
        import uvicorn

        from oms.api import create_app

        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        app = create_app(gateway, token=token)
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start within 10 s")
            time.sleep(0.005)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


class ServeProcess:
    """A real `oms serve` child process on a free loopback port (stopped by the fixture)."""

    def __init__(self, db: Path, log: Path, *, token: str | None = None, args: tuple[str, ...] = ()) -> None:
        self.db, self.log_path, self.token = db, log, token
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if k != "OMS_API_TOKEN"}
        if token:
            env["OMS_API_TOKEN"] = token
        cmd = [sys.executable, "-m", "oms.cli", "serve", "--db", str(db), "--port", str(self.port), *args]
        self._log = log.open("ab")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env)

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 20) -> ServeProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"oms serve exited with {self.proc.returncode}:\n{self.log}")
            try:
                httpx.get(self.url + "/orders", timeout=1)
                return self
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError(f"oms serve did not answer within {timeout} s:\n{self.log}")

    def connect(self) -> oms.gateway.Gateway:
        return oms.connect(self.url, token=self.token)

    def wait(self, timeout: float = 15) -> int:
        """The exit status; kills the process if it has not exited within ``timeout``."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise

    def terminate(self, timeout: float = 15) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def cleanup(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., ServeProcess]]:
    """Start real `oms serve` processes: ``serve(db, token=None, args=(), ready=True)``.
    Every process still running at teardown is killed."""
    started: list[ServeProcess] = []

    def start(db: Path, *, token: str | None = None, args: tuple[str, ...] = (), ready: bool = True) -> ServeProcess:
        process = ServeProcess(db, tmp_path / f"serve-{len(started)}.log", token=token, args=args)
        started.append(process)
        return process.wait_ready() if ready else process

    yield start
    for process in started:
        process.cleanup()


# ---- PostgreSQL: a real server from the distribution's binaries, for the whole session ----

import itertools  # noqa: E402

from oms.store.pgcluster import TempCluster  # noqa: E402

_databases = itertools.count(1)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[TempCluster]:
    """A real PostgreSQL server (initdb into a temporary folder, a free loopback port; run
    as the unprivileged ``postgres`` user under root), stopped and removed at the end.
    When it cannot start, every test that needs it errors: never a skip."""
    with TempCluster() as cluster:
        yield cluster


@pytest.fixture
def pg_url(pg_cluster: TempCluster) -> str:
    """The URL of a fresh, empty database on the session's PostgreSQL server."""
    return pg_cluster.create_database(f"book_{os.getpid()}_{next(_databases)}")
