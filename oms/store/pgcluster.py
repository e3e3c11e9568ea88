"""A throwaway PostgreSQL server from the distribution's binaries, for tests and benchmarks.

Adapter layer (the standard library, and psycopg to make databases). ``TempCluster`` runs ``initdb`` into a fresh
folder, starts the server on a free loopback port (its socket in the same folder), makes
databases, can restart the server as a crash would (``restart(immediate=True)``) and stops
it and removes the folder at the end. PostgreSQL refuses to run as root, so under root
every server program runs as an unprivileged system user (``postgres``, through
``runuser``) and the folder is handed to that user. The superuser is ``oms`` with a
password; loopback TCP asks for it (scram-sha-256), the socket trusts the owner.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

USER = "oms"
PASSWORD = "oms-test-password"
SYSTEM_USER = "postgres"
"""Who runs the server when this process is root."""
SEARCH = ("/usr/lib/postgresql",)
"""Where Debian keeps each major version's binaries (``<version>/bin``)."""


class ClusterError(RuntimeError):
    """The server could not be set up or started; the message says why."""


def find_bindir() -> Path:
    """The folder of ``initdb``/``pg_ctl``: on PATH, else the newest Debian version."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).resolve().parent
    versions = sorted(
        (p for root in SEARCH if Path(root).is_dir() for p in Path(root).iterdir() if (p / "bin" / "initdb").exists()),
        key=lambda p: int(p.name) if p.name.isdigit() else 0,
    )
    if not versions:
        raise ClusterError("PostgreSQL's server binaries (initdb, pg_ctl) are not installed: run `make postgres`")
    return versions[-1] / "bin"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TempCluster:
    """A PostgreSQL server of its own in a temporary folder (a context manager)."""

    def __init__(self, *, bindir: Path | None = None, fsync: bool = True) -> None:
        self.bindir = bindir or find_bindir()
        self.fsync = fsync
        self.root = Path(tempfile.mkdtemp(prefix="oms-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = 0
        self._as = [] if os.geteuid() != 0 else ["runuser", "-u", SYSTEM_USER, "--"]
        if self._as:
            try:
                account = pwd.getpwnam(SYSTEM_USER)
            except KeyError:
                raise ClusterError(f"running as root needs the system user {SYSTEM_USER!r} to run PostgreSQL") from None
            os.chown(self.root, account.pw_uid, account.pw_gid)

    def _run(self, program: str, *args: str) -> str:
        done = subprocess.run(
            [*self._as, str(self.bindir / program), *args], capture_output=True, text=True, timeout=120, cwd=self.root
        )
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise ClusterError(f"{program} failed ({done.returncode}): {' | '.join(tail)}")
        return done.stdout

    def start(self) -> TempCluster:
        """initdb (once), then start the server and wait until it accepts connections."""
        if not self.data.exists():
            pwfile = self.root / "pwfile"
            pwfile.write_text(PASSWORD + "\n")
            if self._as:
                account = pwd.getpwnam(SYSTEM_USER)
                os.chown(pwfile, account.pw_uid, account.pw_gid)
            self._run(
                "initdb", "-D", str(self.data), "-U", USER, f"--pwfile={pwfile}", "-E", "UTF8", "--locale=C",
                "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync",
            )  # fmt: skip
            pwfile.unlink()
        self._start_server()
        return self

    def _start_server(self) -> None:
        for _attempt in range(3):  # a free port can be taken between finding it and binding it
            self.port = self.port or _free_port()
            options = (
                f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync={'on' if self.fsync else 'off'}"
                " -c max_connections=200 -c log_min_messages=warning"
            )
            try:
                self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")
                return
            except ClusterError:
                if "already in use" not in self.server_log():
                    raise ClusterError(f"PostgreSQL did not start; its log ends: {self.server_log()[-600:]}") from None
                self.port = 0
        raise ClusterError("PostgreSQL found no free loopback port in 3 attempts")

    def server_log(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def url(self, database: str = "postgres", *, password: str = PASSWORD, user: str = USER) -> str:
        return f"postgresql://{user}:{password}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Make database ``name`` (it must not exist) and return its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"'.encode())
        return self.url(name)

    def restart(self, *, immediate: bool = True) -> None:
        """Stop the server (``immediate``: as a crash -- no checkpoint, WAL replay on start) and start it again."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate" if immediate else "fast", "-w", "stop")
        self._start_server()

    def stop(self) -> None:
        """Stop the server (fast) and remove the folder. Idempotent."""
        if self.data.exists() and (self.data / "postmaster.pid").exists():
            with contextlib.suppress(ClusterError, subprocess.TimeoutExpired):
                self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> TempCluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()
