"""``oms lab``: the analyst workbench -- JupyterLab on ``notebooks/`` over one shared book.

Adapter layer. A DuckDB file takes one writer *process*, and an analyst opens the
order-entry and the order-views notebooks side by side (two kernels, two processes). So
no notebook opens the file: the workbench starts ``oms serve --db FILE`` on a free
loopback port with a fresh random token, exports ``OMS_URL`` and ``OMS_API_TOKEN`` to
JupyterLab (its kernels inherit them; ``oms.notebook.session()`` connects to the server),
runs ``jupyter lab``, and stops the server when JupyterLab exits (or on Ctrl-C/SIGTERM).

A database that cannot be used (locked by another process, not a DuckDB file, newer
schema) is reported as one line naming the file and what to do, before JupyterLab
starts -- never as a lock error inside a notebook.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

import oms

URL_VARIABLE = "OMS_URL"
TOKEN_VARIABLE = "OMS_API_TOKEN"
SERVER_START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
DEFAULT_NOTEBOOKS = "notebooks"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", default=oms.DEFAULT_DB, help="the shared DuckDB file (default: %(default)s)")
    parser.add_argument("--notebooks", default=DEFAULT_NOTEBOOKS, help="folder JupyterLab opens (default: %(default)s)")
    parser.add_argument("--port", type=int, default=0, help="JupyterLab's port (default: a free one)")
    parser.add_argument("--no-browser", action="store_true", help="do not open a web browser")
    parser.add_argument(
        "jupyter_args",
        nargs=argparse.REMAINDER,
        help="after --, more arguments for jupyter lab (e.g. -- --IdentityProvider.token=...)",
    )


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _stop(process: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT_S) -> int:
    """SIGTERM, wait, then SIGKILL. Returns the exit status."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)
    return process.returncode


class SharedBookServer:
    """``oms serve`` as a child process on a free loopback port, with its own token."""

    def __init__(self, db: str | os.PathLike[str], *, env: dict[str, str] | None = None) -> None:
        self.db = str(db)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = secrets.token_urlsafe(24)
        self.env = dict(env if env is not None else os.environ)
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None

    def start(self, log_dir: Path) -> None:
        """Start the server and wait until it answers. Raises oms.StoreError with the
        server's own one-line reason when it cannot start (e.g. DATABASE_LOCKED)."""
        Path(self.db).parent.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{Path(self.db).name}.serve.log"
        env = {**self.env, TOKEN_VARIABLE: self.token}
        command = [sys.executable, "-m", "oms.cli", "serve", "--db", self.db, "--port", str(self.port)]
        command += ["--log-level", "warning"]
        with self.log_path.open("wb") as log:
            # Its own session: a Ctrl-C in the terminal reaches JupyterLab, and the server
            # is stopped after it, not under it.
            self.process = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise oms.StoreError(self._reason())
            if self.ready():
                return
            time.sleep(0.1)
        self.stop()
        raise oms.StoreError(f"the order server for {self.db} did not answer within {SERVER_START_TIMEOUT_S:.0f} s")

    def ready(self) -> bool:
        import httpx

        try:
            response = httpx.get(
                f"{self.url}/orders", params={"symbol": "READY"}, timeout=1.0,
                headers={"Authorization": f"Bearer {self.token}"},
            )  # fmt: skip
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    def _reason(self) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""
        lines = [line.removeprefix("oms serve: ") for line in text.splitlines() if line.strip()]
        return lines[-1] if lines else f"the order server for {self.db} stopped at start"

    def stop(self) -> int | None:
        if self.process is None:
            return None
        return _stop(self.process)

    def __enter__(self) -> SharedBookServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def jupyter_command(notebooks: Path, port: int, no_browser: bool, extra: Sequence[str]) -> list[str]:
    """The ``jupyter lab`` command line: loopback only, rooted at ``notebooks``."""
    command = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={notebooks}", "--ServerApp.ip=127.0.0.1"]
    command.append(f"--ServerApp.port={port or free_port()}")
    if no_browser:
        command.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0 and "--allow-root" not in extra:
        command.append("--allow-root")
    return command + [a for a in extra if a != "--"]


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(args: argparse.Namespace) -> int:
    """Run the workbench until JupyterLab exits. 0 on a clean stop; 1 if the shared book
    cannot be served (the reason is printed as one line)."""
    notebooks = Path(args.notebooks).resolve()
    if not notebooks.is_dir():
        print(f"oms lab: {notebooks} is not a folder", file=sys.stderr)
        return 1
    db = Path(args.db).resolve()
    server = SharedBookServer(db)
    log_dir = db.parent
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    lab: subprocess.Popen[bytes] | None = None
    try:
        try:
            server.start(log_dir)
        except oms.OMSError as e:
            print(f"oms lab: cannot open the shared book: {e.message}", file=sys.stderr)
            print(
                "oms lab: close the program using it (another `oms lab` or `oms serve`?), or pass --db", file=sys.stderr
            )
            return 1
        print(f"oms lab: shared book {db} served at {server.url}", file=sys.stderr, flush=True)
        env = {**os.environ, URL_VARIABLE: server.url, TOKEN_VARIABLE: server.token}
        lab = subprocess.Popen(jupyter_command(notebooks, args.port, args.no_browser, args.jupyter_args), env=env)
        lab.wait()
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        if lab is not None:
            _stop(lab)
        stopped = server.stop()
        signal.signal(signal.SIGTERM, previous)
        if stopped is not None:
            print(f"oms lab: shared book server stopped (exit {stopped}); {db} released", file=sys.stderr, flush=True)
