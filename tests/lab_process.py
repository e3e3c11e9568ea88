"""Start ``oms lab`` (the workbench: ``oms serve`` + JupyterLab) as a real child process for
tests, in a throwaway HOME, on free loopback ports, with bounded waits; always stopped.

Used by test_workbench.py and test_browser.py (not a test module itself).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from oms.workbench import free_port

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 45.0
STOP_TIMEOUT_S = 20.0


@dataclass
class Lab:
    process: subprocess.Popen[bytes]
    port: int
    token: str
    db: Path | str
    notebooks: Path
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        sep = "&" if "?" in path else "?"
        return f"{self.base}{path}{sep}token={self.token}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def children(self) -> dict[str, int]:
        """pid of the server and of JupyterLab, by looking at this process's children."""
        found: dict[str, int] = {}
        for status in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = status.read_text().rsplit(")", 1)[1].split()
                cmdline = (status.parent / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if int(fields[1]) != self.process.pid:
                continue
            args = [a.decode(errors="replace") for a in cmdline]
            if "serve" in args:
                found["server"] = int(status.parent.name)
            elif "jupyterlab" in args:
                found["lab"] = int(status.parent.name)
        return found

    def kernel_environment(self) -> dict[str, str]:
        """The environment JupyterLab hands its kernels (``OMS_URL``, the token, ...): a
        Python process started with it stands in for another notebook on the shared book."""
        raw = Path(f"/proc/{self.children()['lab']}/environ").read_bytes().split(b"\0")
        return dict(item.decode().split("=", 1) for item in raw if b"=" in item)

    def stop(self) -> int:
        """SIGTERM the workbench (as a terminal or a supervisor would) and wait for it."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                for pid in self.children().values():
                    os.kill(pid, signal.SIGKILL)
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        return self.process.returncode


def throwaway_home(base: Path) -> dict[str, str]:
    """Environment for JupyterLab/Chromium writing only under ``base`` (no news toast)."""
    home = base / "home"
    config = home / ".jupyter"
    settings = config / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True, exist_ok=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMS_", "JUPYTER"))}
    env.update(HOME=str(home), JUPYTER_CONFIG_DIR=str(config), JUPYTER_DATA_DIR=str(home / "data"),
               JUPYTER_RUNTIME_DIR=str(home / "runtime"), TZ="UTC", PYTHONHASHSEED="0")  # fmt: skip
    return env


@contextmanager
def running_lab(base: Path, notebooks: list[str], *extra: str, db: str | None = None) -> Iterator[Lab]:
    """``oms lab`` over copies of ``notebooks`` (names under notebooks/) in ``base``, on
    ``db`` (default: a DuckDB file in ``base``)."""
    folder = base / "notebooks"
    folder.mkdir(parents=True, exist_ok=True)
    for name in notebooks:
        shutil.copy(ROOT / "notebooks" / name, folder / name)
    port, token, log = free_port(), "test-token", base / "lab.log"
    book: Path | str = db if db is not None else base / "data" / "oms.duckdb"
    command = [sys.executable, "-m", "oms.cli", "lab", "--db", str(book), "--notebooks", str(folder),
               "--port", str(port), "--no-browser", "--", f"--IdentityProvider.token={token}", *extra]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=throwaway_home(base), stdout=out, stderr=subprocess.STDOUT,
                                   cwd=base, start_new_session=True)  # fmt: skip
    lab = Lab(process, port, token, book, folder, log)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise AssertionError(f"oms lab exited with {process.returncode}:\n{lab.output()}")
            try:
                if httpx.get(lab.url("/api/status"), timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"JupyterLab did not answer within {START_TIMEOUT_S:.0f} s:\n{lab.output()}")
            time.sleep(0.2)
        yield lab
    finally:
        lab.stop()
        if process.poll() is None:  # pragma: no cover - last resort
            os.killpg(process.pid, signal.SIGKILL)
