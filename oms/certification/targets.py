"""Systems under test: what the runner certifies, what each offers, and the real faults
the harness can inflict.

Adapter layer. A target hands the runner a gateway, says what the system offers
(``offer()``: the tiers and extensions of ``oms.certification.needs``, declared by the
operator or probed) and what the harness can do to it (``capabilities``, its faculties):
``raw_http`` (requests byte for byte), ``restart`` (graceful stop + start on the same
database), ``crash`` (kill -9 of the real process holding the database, then start
again). A case needing a faculty the target lacks is NOT RUN -- never passed; one
needing a tier or extension the system does not offer is NOT APPLICABLE.

Probing an HTTP system (``probe``) sends one ``POST /order`` (a probe order, symbol
PROBE) and then ``GET /order/{id}``, ``GET /order/{id}/events`` and ``GET /events``
for it: a tier is absent only when its route answers 403, 404, 405 or 501 (other than an
ORDER_NOT_FOUND refusal of the order that exists); any other answer -- right or wrong --
means it is there, and its cases judge it.

- ``EmbeddedTarget``: our engine in this process on a DuckDB file (by default a fresh
  one with the simulated clock). Restart closes and reopens the file; a crash runs the
  writes in a *child process* on the same file and SIGKILLs it, then reopens.
- ``RemoteTarget``: a server someone else runs (``--target URL``): gateway and HTTP only.
- ``ManagedTarget``: ``--serve "CMD"`` with ``{port}`` and ``{db}``; the runner starts
  it on a free loopback port and a fresh database path, waits until ``GET /orders``
  answers, and can SIGTERM, SIGKILL and restart it on the same ``{db}``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import oms
from oms.certification import needs as needs_
from oms.certification._child import Op, apply_ops, stream_order
from oms.certification.backend import backend_of
from oms.certification.fixwire import FixClient, FixContractViolation, FixSessionEnded, FixWireGateway
from oms.certification.values import NotOffered, NotSupported
from oms.certification.wire import WireGateway
from oms.gateway import Gateway
from oms.store.base import shown, urls_in

READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
CHILD_TIMEOUT_S = 30.0


class TargetError(Exception):
    """The target could not be started or reached at all."""


@dataclass
class Offer:
    """What the system under test offers, and how that was found out."""

    names: frozenset[str]
    how: str
    """``declared by the operator (--offers ...)``, ``probed over HTTP``, ..."""
    probes: list[tuple[str, str, str]] = field(default_factory=list)
    """(request, answer, conclusion) of each probe."""
    server: str | None = None
    """What the server says about itself (Server header, OpenAPI title), if anything."""
    probe_id: int | None = None
    """The order the probe created, if it created one."""
    tentative: frozenset[str] = frozenset()
    """Offered names confirmed only when a step uses them (``sql`` of a managed server)."""
    lacking: dict[str, str] = field(default_factory=dict)
    """Operations of the core tier its face lacks (``needs.OPERATIONS``), and why."""


def declared(names: frozenset[str]) -> Offer:
    shown = ",".join(n for n in needs_.OFFERABLE if n in names)
    return Offer(frozenset(names) | {"core"}, f"declared by the operator (--offers {shown or 'core'})")


class Target:
    kind = "target"
    capabilities: frozenset[str] = frozenset()
    fresh = False
    """True when the database starts empty (ids from 1): the run is reproducible."""

    @property
    def gateway(self) -> Gateway:
        raise NotImplementedError

    @property
    def description(self) -> str:
        raise NotImplementedError

    def offer(self, declared_names: frozenset[str] | None = None) -> Offer:
        """What the system offers: ``declared_names`` when the operator said, else probed."""
        if declared_names is not None:
            return declared(declared_names)
        return Offer(frozenset(needs_.OFFERABLE), "all tiers and extensions (our engine)")

    def restart(self) -> None:
        raise NotSupported(f"{self.kind} target cannot restart")

    def crash(self, ops: list[Op]) -> list[dict[str, Any]]:
        raise NotSupported(f"{self.kind} target cannot be killed")  # pragma: no cover

    def crash_stream(self, acks: int, token: str) -> tuple[list[dict[str, Any]], int]:
        raise NotSupported(f"{self.kind} target cannot be killed")

    def kill_and_start(self) -> None:
        """kill -9 of the system, then start it again on the same database."""
        raise NotSupported(f"{self.kind} target cannot be killed")

    def sql(self, query: str, params: list[Any]) -> list[tuple[Any, ...]]:
        raise NotOffered(f"the {self.kind} target has no backend database to read")

    def http(self, method: str, path: str, *, body: str | None = None, json_body: Any = None) -> tuple[int, Any]:
        raise NotSupported(f"{self.kind} target does not speak HTTP")

    def wait(self, seconds: float) -> None:
        """Let the system's clock move on by at least ``seconds``."""
        time.sleep(seconds)

    def prepare(self, capabilities: set[str]) -> None:
        """The run ahead needs these capabilities: get ready early (optional)."""

    def resume(self) -> None:
        """Make sure the system is up again (after a backend read stopped it)."""

    def fix_client(self) -> FixClient:
        """A new raw FIX session to the system (connected, not logged on), the gateway's own
        session logged out first (an acceptor takes one session per CompID pair)."""
        raise NotSupported(f"the {self.kind} target has no FIX face")

    def close(self) -> None:
        """Release everything the target started. Idempotent."""


# ---- embedded --------------------------------------------------------------------------------


def _no_book_yet(path: str) -> bool:
    """True when ``path`` holds no book yet -- no file, or a database server's database
    without a single event -- so a run there may use the simulated clock and ids from 1.
    A book in use (a team's PostgreSQL database above all) keeps the system clock."""
    from oms.store import is_url, open_store

    if not is_url(path):
        return not Path(path).exists()
    try:
        store = open_store(path, read_only=True)
    except oms.OMSError:
        return True  # an empty database (or one that cannot be used: opening it says why)
    try:
        (last_seq, _, _), _ = store.open_state()
    finally:
        store.close()
    return last_seq == 0


class EmbeddedTarget(Target):
    """Our engine in this process, on a DuckDB file (fresh in a temp dir by default)."""

    kind = "embedded"
    capabilities = frozenset({"restart", "crash"})

    def __init__(self, path: str | os.PathLike[str] | None = None, *, simulated: bool | None = None) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if path is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="oms-certify-")
            path = Path(self._tmp.name) / "oms.duckdb"
        self.path = str(path)
        self.fresh = self._tmp is not None or _no_book_yet(self.path)
        self.simulated = self.fresh if simulated is None else simulated
        self._engine: Any = None
        self._standby: subprocess.Popen[str] | None = None
        self._child_start: datetime | None = None
        self._open(oms.SimulatedClock() if self.simulated else oms.SystemClock())

    def _open(self, clock: Any) -> None:
        self._clock = clock
        self._engine = oms.open(self.path, clock=clock)

    @property
    def description(self) -> str:
        clock = "simulated clock" if self.simulated else "system clock"
        where = "fresh database" if self.fresh else "database"
        if self._tmp is None:  # a path the user chose (a temporary one would make reports differ)
            where += f" {shown(self.path)}"
        return f"embedded engine, {where}, {clock}"

    @property
    def gateway(self) -> Gateway:
        return self._engine  # type: ignore[no-any-return]

    def restart(self) -> None:
        self._engine.close()
        self._open(self._clock)  # the simulated clock goes on where it was

    def wait(self, seconds: float) -> None:
        if not self.simulated:
            time.sleep(seconds)  # the simulated clock moves on by itself with every reading

    def prepare(self, capabilities: set[str]) -> None:
        if "crash" in capabilities and self._standby is None:
            self._standby = _spawn_child()

    def _child(self, request: dict[str, Any]) -> subprocess.Popen[str]:
        """A started child (the standby one if there is one) that now owns the database."""
        child = self._standby or _spawn_child()
        self._standby = _spawn_child()  # the next kill -9 (a case may crash again) starts warm
        self._child_start = self._clock() if self.simulated else None
        clock_start = self._child_start.isoformat() if self._child_start else ""
        self._engine.close()  # the child must own the file: DuckDB locks it per process
        try:
            if _readline(child, CHILD_TIMEOUT_S).strip() != "READY":
                raise TargetError("the crash child did not start")
            assert child.stdin is not None
            child.stdin.write(json.dumps({"path": self.path, "clock_start": clock_start, **request}) + "\n")
            child.stdin.flush()
        except BaseException:
            _reap(child)
            self._after_crash(ticks=0)
            raise
        return child

    def _after_crash(self, ticks: int) -> None:
        """Open the file again; the simulated clock goes on after the child's ``ticks`` readings."""
        if self._child_start is None:
            self._open(oms.SystemClock())
        else:
            self._open(oms.SimulatedClock(start=self._child_start + ticks * self._clock.step))

    def crash(self, ops: list[Op]) -> list[dict[str, Any]]:
        child = self._child({"mode": "ops", "ops": ops})
        try:
            results = []
            for _ in ops:
                line = _readline(child, CHILD_TIMEOUT_S)
                results.append(json.loads(line))
            if _readline(child, CHILD_TIMEOUT_S).strip() != "IDLE":
                raise TargetError("the crash child did not report IDLE")
            _kill9(child)
        finally:
            _reap(child)
            self._after_crash(ticks=len(ops))
        return results

    def crash_stream(self, acks: int, token: str) -> tuple[list[dict[str, Any]], int]:
        child = self._child({"mode": "stream", "token": token})
        acked: list[dict[str, Any]] = []
        try:
            assert child.stdout is not None
            while len(acked) < acks:
                acked.append(json.loads(_readline(child, CHILD_TIMEOUT_S)))
            before_kill = len(acked)
            _kill9(child)  # still writing: the stream never pauses
            for line in child.stdout:  # acknowledgements already written before the kill
                if line.endswith("\n"):
                    acked.append(json.loads(line))
        finally:
            _reap(child)
            self._after_crash(ticks=len(acked) + 1)  # + the one that may have been in flight
        return acked, before_kill

    def offer(self, declared_names: frozenset[str] | None = None) -> Offer:
        if declared_names is not None:
            return declared(declared_names)
        return Offer(frozenset(needs_.OFFERABLE), "our embedded engine: every tier, GET /events and its DuckDB file")

    def sql(self, query: str, params: list[Any]) -> list[tuple[Any, ...]]:
        table = self._engine.arrow(query, params)
        return [tuple(row.values()) for row in table.to_pylist()]

    def close(self) -> None:
        if self._standby is not None:
            _reap(self._standby)
            self._standby = None
        if self._engine is not None:
            self._engine.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def _spawn_child() -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "oms.certification._child"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _readline(child: subprocess.Popen[str], timeout: float) -> str:
    """One line from the child's stdout, or TargetError after ``timeout`` seconds."""
    assert child.stdout is not None
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(child.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)
    if not box or not box[0]:
        err = child.stderr.read() if child.stderr and child.poll() is not None else ""
        raise TargetError(f"the child process stopped answering: {err.strip()[-500:]}")
    return box[0]


def _kill9(proc: subprocess.Popen[Any]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(STOP_TIMEOUT_S)


def _reap(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        _kill9(proc)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream:
            with contextlib.suppress(OSError):
                stream.close()


# ---- remote ----------------------------------------------------------------------------------


class RemoteTarget(Target):
    """A server someone else runs: the gateway and raw HTTP, nothing it cannot undo."""

    kind = "url"
    capabilities: frozenset[str] = frozenset()

    def __init__(self, url: str, token: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self._gateway: Any = WireGateway(self.url, token=token)

    @property
    def description(self) -> str:
        return f"server at {self.url}"

    @property
    def gateway(self) -> Gateway:
        return self._gateway  # type: ignore[no-any-return]

    def offer(self, declared_names: frozenset[str] | None = None) -> Offer:
        offer = declared(declared_names) if declared_names is not None else probe(self._gateway)
        offer.names = offer.names | {"raw_http"}  # every HTTP system has its HTTP face
        return offer

    def http(self, method: str, path: str, *, body: str | None = None, json_body: Any = None) -> tuple[int, Any]:
        if json_body is not None:
            body = json.dumps(json_body)
        return self._gateway.request(method, path, body)  # type: ignore[no-any-return]

    def _reconnect(self) -> None:
        self._gateway.close()
        self._gateway = WireGateway(self.url, token=self.token)

    def close(self) -> None:
        self._gateway.close()


# ---- FIX -------------------------------------------------------------------------------------

FIX_LACKS = {
    "execute": "FIX has no message to execute an order, and the target has no HTTP face",
    "listing": "FIX has no message to list the book, and the target has no HTTP face",
}
DEFAULT_FIX_IDS = needs_.DEFAULT_FIX_IDS


class FixFace:
    """The FIX face of a target: one strict gateway whose session is logged on when first
    used and again after each restart (what it learnt of the orders is kept across)."""

    def __init__(self, host: str, port: int, sender: str, target: str, rest: WireGateway | None) -> None:
        self.host, self.port, self.sender, self.target = host, port, sender, target
        self.rest = rest
        self._gateway: FixWireGateway | None = None

    @property
    def url(self) -> str:
        return f"fix://{self.host}:{self.port}?sender={self.sender}&target={self.target}"

    def client(self) -> FixClient:
        return FixClient(self.host, self.port, sender=self.sender, target=self.target)

    @property
    def gateway(self) -> FixWireGateway:
        if self._gateway is None:
            self._gateway = FixWireGateway(self._logged_on(), rest=self.rest)
        elif self._gateway.client.ended:
            self._gateway.client.close()
            self._gateway.client = self._logged_on()
        return self._gateway

    def _logged_on(self) -> FixClient:
        try:
            client = self.client()
            client.logon(reset=True)
        except FixSessionEnded as e:
            raise TargetError(str(e)) from None
        return client

    def rebind(self, rest: WireGateway | None) -> None:
        """After a restart: the new HTTP connection, and a new Logon at the next use."""
        self.rest = rest
        if self._gateway is not None:
            self._gateway.rest = rest
            self._gateway.client.close()

    def release(self) -> None:
        """Log the gateway's session out (the next use logs on again)."""
        if self._gateway is not None and not self._gateway.client.ended:
            self._gateway.client.logout()

    def offer(self, rest_offer: Offer | None) -> Offer:
        """With an HTTP face, what it offers plus ``fix``; without, core (without execute and
        listing) and read (OrderStatusRequest) over FIX."""
        try:
            self.gateway  # noqa: B018 - the Logon is the probe
            probe = (f"Logon to {self.url}", "Logon answered", "fix offered")
        except FixContractViolation as e:  # there, but wrong: its cases say so
            probe = (f"Logon to {self.url}", f"breaks the FIX face: {e}", "fix offered (its cases will fail)")
        if rest_offer is not None:
            rest_offer.names = rest_offer.names | {"fix"}
            rest_offer.probes.insert(0, probe)
            if self._gateway is not None:
                self._gateway.rest_read = "read" in rest_offer.names
            return rest_offer
        how = "probed over FIX (a Logon); no HTTP face"
        return Offer(frozenset({"core", "read", "fix"}), how, [probe], lacking=dict(FIX_LACKS))

    def close(self) -> None:
        self.release()
        if self.rest is not None:
            self.rest.close()


def parse_fix_url(url: str) -> tuple[str, int, str, str, str | None]:
    """``fix://HOST:PORT?sender=OURS&target=THEIRS[&rest=http://...]`` -> its parts."""
    from urllib.parse import parse_qs, urlsplit

    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    if parts.scheme != "fix" or not parts.hostname or not parts.port:
        raise TargetError(f"not a fix://HOST:PORT URL: {url!r}")
    unknown = sorted(set(query) - {"sender", "target", "rest"})
    if unknown:
        raise TargetError(f"{url!r}: unknown parameter {', '.join(unknown)} (sender, target, rest)")
    sender, target = query.get("sender", DEFAULT_FIX_IDS[0]), query.get("target", DEFAULT_FIX_IDS[1])
    return parts.hostname, parts.port, sender, target, query.get("rest")


class FixTarget(Target):
    """A FIX 4.4 system someone else runs (``--target fix://...``), with its HTTP face when
    ``rest=URL`` names one (for execute, the listing and the audit log)."""

    kind = "fix"
    capabilities: frozenset[str] = frozenset()

    def __init__(self, url: str, token: str | None = None) -> None:
        host, port, sender, target, rest = parse_fix_url(url)
        self.rest_url = rest
        self.face = FixFace(host, port, sender, target, WireGateway(rest, token=token) if rest else None)

    @property
    def description(self) -> str:
        http = f" with its HTTP face at {self.rest_url}" if self.rest_url else ""
        return f"FIX system at {self.face.url}{http}"

    @property
    def gateway(self) -> Gateway:
        return self.face.gateway  # type: ignore[return-value]

    def offer(self, declared_names: frozenset[str] | None = None) -> Offer:
        rest = self.face.rest
        if declared_names is not None:
            rest_offer: Offer | None = declared(declared_names)
        else:
            rest_offer = probe(rest) if rest is not None else None
        if rest_offer is not None:
            rest_offer.names = rest_offer.names | {"raw_http"}
        return self.face.offer(rest_offer)

    def http(self, method: str, path: str, *, body: str | None = None, json_body: Any = None) -> tuple[int, Any]:
        if self.face.rest is None:
            raise NotSupported("the FIX target has no HTTP face (give rest=URL)")
        if json_body is not None:
            body = json.dumps(json_body)
        return self.face.rest.request(method, path, body)  # type: ignore[no-any-return]

    def fix_client(self) -> FixClient:
        self.face.release()
        return self.face.client()

    def close(self) -> None:
        self.face.close()


# ---- managed ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ManagedTarget(RemoteTarget):
    """A server the runner starts from ``command`` (with ``{port}`` and ``{db}``), and may
    stop, kill and start again on the same database."""

    kind = "managed"
    capabilities = frozenset({"restart", "crash"})
    fresh = True

    def __init__(
        self,
        command: str,
        *,
        workdir: str | os.PathLike[str] | None = None,
        log: Path | None = None,
        fix_ids: tuple[str, str] = DEFAULT_FIX_IDS,
    ) -> None:
        if "{port}" not in command and "{fix_port}" not in command:
            raise TargetError("--serve needs {port} (HTTP) or {fix_port} (FIX) in the command (and usually {db})")
        self._tmp = tempfile.TemporaryDirectory(prefix="oms-certify-serve-")
        self.command = command
        self.has_http = "{port}" in command
        self.port = free_port()
        self.fix_port = free_port() if "{fix_port}" in command else None
        self.db = str(Path(workdir or self._tmp.name) / "oms.duckdb")
        self.log_path = log or Path(self._tmp.name) / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._down_for_sql = False
        try:
            self._start()
        except BaseException:
            self._tmp.cleanup()
            raise
        super().__init__(f"http://127.0.0.1:{self.port}")
        self.face: FixFace | None = None
        if self.fix_port is not None:
            rest = self._gateway if self.has_http else None
            self.face = FixFace("127.0.0.1", self.fix_port, *fix_ids, rest)

    @property
    def description(self) -> str:
        return f"managed server: {urls_in(self.command)}"

    @property
    def gateway(self) -> Gateway:
        return self.face.gateway if self.face is not None else self._gateway  # type: ignore[return-value]

    def fix_client(self) -> FixClient:
        if self.face is None:
            raise NotSupported("the managed server has no FIX face (no {fix_port} in its command)")
        self.resume()
        self.face.release()
        return self.face.client()

    def http(self, method: str, path: str, *, body: str | None = None, json_body: Any = None) -> tuple[int, Any]:
        if not self.has_http:
            raise NotSupported("the managed server has no HTTP face (no {port} in its command)")
        return super().http(method, path, body=body, json_body=json_body)

    def _reconnect(self) -> None:
        super()._reconnect()
        if self.face is not None:
            self.face.rebind(self._gateway if self.has_http else None)

    def offer(self, declared_names: frozenset[str] | None = None) -> Offer:
        if self.face is not None and not self.has_http:
            offer = self.face.offer(declared(declared_names) if declared_names is not None else None)
        else:
            offer = super().offer(declared_names)
            if self.face is not None:
                offer = self.face.offer(offer)
        if declared_names is None:  # its database is read when a sql case first needs it
            offer.names = offer.names | {"sql"}
            offer.tentative = frozenset({"sql"})
            offer.probes.append(
                (
                    "its database",
                    "read when a sql case needs it",
                    "sql if its {db} DuckDB file, or the PostgreSQL database in its command, has the reference schema",
                )
            )
        return offer

    def argv(self) -> list[str]:
        python = shlex.quote(sys.executable)
        text = self.command.replace("{python}", python).replace("{port}", str(self.port))
        text = text.replace("{fix_port}", str(self.fix_port))
        return shlex.split(text.replace("{db}", shlex.quote(self.db)))

    def _start(self) -> None:
        env = dict(os.environ)
        # The oms of this environment first on PATH, so `oms serve ...` means this one.
        env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        try:
            self.proc = subprocess.Popen(
                self.argv(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        except OSError as e:
            raise TargetError(f"cannot start {urls_in(self.command)!r}: {e}") from None
        finally:
            log.close()
        self.starts += 1
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        if self.has_http:
            self._wait_http(deadline)
        if self.fix_port is not None:
            self._wait_fix(deadline)

    def _wait_fix(self, deadline: float) -> None:
        """Until the FIX port takes a connection."""
        assert self.proc is not None and self.fix_port is not None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise TargetError(f"the server exited with {self.proc.returncode} before answering: {self._log_tail()}")
            try:
                socket.create_connection(("127.0.0.1", self.fix_port), timeout=1.0).close()
                return
            except OSError:
                time.sleep(0.03)
        self._signal(signal.SIGKILL)
        raise TargetError(f"the server took no FIX connection within {READY_TIMEOUT_S:.0f} s: {self._log_tail()}")

    def _wait_http(self, deadline: float) -> None:
        import httpx

        url = f"http://127.0.0.1:{self.port}/orders"
        assert self.proc is not None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise TargetError(f"the server exited with {self.proc.returncode} before answering: {self._log_tail()}")
            try:
                if httpx.get(url, timeout=1.0).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.03)
        self._signal(signal.SIGKILL)
        raise TargetError(f"the server did not answer GET /orders within {READY_TIMEOUT_S:.0f} s: {self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            return " | ".join(self.log_path.read_text(errors="replace").strip().splitlines()[-5:])
        except OSError:
            return "(no log)"

    def _signal(self, sig: int) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(STOP_TIMEOUT_S)

    def stop(self) -> None:
        """SIGTERM, then wait (SIGKILL after a bounded wait)."""
        self._signal(signal.SIGTERM)

    def restart(self) -> None:
        self.resume()
        self.stop()
        self._start()
        self._reconnect()

    def kill_and_start(self) -> None:
        self.resume()
        self._signal(signal.SIGKILL)
        self._start()
        self._reconnect()

    def crash(self, ops: list[Op]) -> list[dict[str, Any]]:
        self.resume()
        results = apply_ops(self.gateway, ops)
        self._signal(signal.SIGKILL)
        self._start()
        self._reconnect()
        return results

    def crash_stream(self, acks: int, token: str) -> tuple[list[dict[str, Any]], int]:
        self.resume()
        acked: list[dict[str, Any]] = []
        enough = threading.Event()
        stop = threading.Event()

        def stream() -> None:
            i = 0
            while not stop.is_set():
                try:
                    order = self.gateway.create(**stream_order(token, i))
                except Exception as e:  # refused, unreachable (killed) or breaking the contract
                    failure.append(e)
                    enough.set()
                    return
                acked.append(order.to_dict())
                i += 1
                if len(acked) >= acks:
                    enough.set()

        failure: list[Exception] = []
        writer = threading.Thread(target=stream, daemon=True)
        writer.start()
        if not enough.wait(CHILD_TIMEOUT_S) or (failure and len(acked) < acks):
            stop.set()
            why = f": {failure[0]}" if failure else ""
            raise TargetError(f"the server did not acknowledge the stream of creates{why}")
        before_kill = len(acked)
        self._signal(signal.SIGKILL)  # the writer is still sending
        stop.set()
        writer.join(CHILD_TIMEOUT_S)
        self._start()
        self._reconnect()
        return list(acked), before_kill

    def sql(self, query: str, params: list[Any]) -> list[tuple[Any, ...]]:
        """Read the system's backend database directly (``oms.certification.backend``):
        its ``{db}`` DuckDB file once the server is stopped (SIGTERM; ``resume()`` starts
        it again), or the PostgreSQL database its command names, while it runs."""
        backend = backend_of(self.argv(), self.db)
        if backend.needs_server_down and not self._down_for_sql:
            self.stop()
            self._down_for_sql = True
        return backend.query(query, params)

    def resume(self) -> None:
        if self._down_for_sql:
            self._down_for_sql = False
            self._start()
            self._reconnect()

    def close(self) -> None:
        try:
            if self.face is not None:
                self.face.close()
            super().close()
        finally:
            self._signal(signal.SIGTERM)
            self._tmp.cleanup()


def probe(gw: WireGateway) -> Offer:
    """What an HTTP system offers, found by asking it (see the module docstring)."""
    probes: list[tuple[str, str, str]] = []
    names = {"core"}
    probe_id = None
    status, body = gw.request("POST", "/order", '{"symbol": "PROBE", "side": "BUY", "quantity": 1, "price": 1}')
    if 200 <= status < 300 and isinstance(body, dict) and _is_id(body.get("order_id")):
        probe_id = int(body["order_id"])
        probes.append(("POST /order (a probe order)", f"{status}, order {probe_id}", "core answers"))
    else:
        probes.append(("POST /order (a probe order)", f"{status}", "no probe order: the core cases will show why"))
    some_id = probe_id if probe_id is not None else 1
    for name, path in (("read", f"/order/{some_id}"), ("audit", f"/order/{some_id}/events"), ("events_log", "/events")):
        status, body = gw.request("GET", path)
        there = _route_there(status, body) and (name != "events_log" or (status == 200 and isinstance(body, list)))
        probes.append((f"GET {path}", str(status), f"{name} {'offered' if there else 'not offered'}"))
        if there:
            names.add(name)
    status, body = gw.request("GET", "/openapi.json")
    info = body.get("info") if status == 200 and isinstance(body, dict) else None
    described = [gw.server] if gw.server else []
    if isinstance(info, dict) and info.get("title"):
        described.append(f"{info.get('title')} {info.get('version', '')}".strip())
    return Offer(
        frozenset(names),
        "probed over HTTP (one probe order)",
        probes,
        "; ".join(described) or None,
        probe_id,
    )


def _route_there(status: int, body: Any) -> bool:
    """False only for 'no such route': 403 / 404 / 405 / 501 for the probe order (which exists),
    unless the answer says ORDER_NOT_FOUND -- a read that is there but wrong, which its
    cases then judge."""
    if status not in (403, 404, 405, 501):
        return True
    detail = body.get("detail") if isinstance(body, dict) else None
    return isinstance(detail, dict) and detail.get("code") == "ORDER_NOT_FOUND"


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def make_target(
    target: str | None = None,
    serve: str | None = None,
    token: str | None = None,
    log: Path | None = None,
    fix_ids: tuple[str, str] = DEFAULT_FIX_IDS,
) -> Target:
    """The target the CLI options describe: a URL, a database path, a command, or (none)
    a fresh embedded database with the simulated clock."""
    if serve:
        return ManagedTarget(serve, log=log, fix_ids=fix_ids)
    if target and target.startswith(("http://", "https://")):
        return RemoteTarget(target, token=token)
    if target and target.startswith("fix://"):
        return FixTarget(target, token=token)
    return EmbeddedTarget(target)
