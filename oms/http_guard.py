"""HTTP/1.1 connection limits for ``oms serve``: uvicorn's httptools protocol, bounded.

Adapter layer. uvicorn bounds neither the size of a request head nor the time a client
may take to send it, so connections holding half-sent heads (slowloris) pile up until
the process runs out of file descriptors and no one else is served. This protocol:

- refuses a head larger than ``max_head_bytes`` with 431 (before buffering more of it);
- closes a connection that has not completed its request head within ``head_timeout``
  seconds of connecting, or of its previous response (408 when it had sent part of one);
- keeps at most ``max_connections`` open: a new connection beyond that closes the
  connection that has waited longest for its next request head -- never one whose
  request is being served -- so a flood of idle connections cannot lock clients out.

Refusals use the API's one error shape, ``{"detail": {"code", "message"}}``, and so does
the 400 for a request httptools cannot parse (uvicorn's own is plain text).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

MAX_HEAD_BYTES = 16 * 1024
"""Bytes a request head (request line and headers) may have; h11's default bound."""
HEAD_TIMEOUT = 10.0
"""Seconds a connection may take to send a complete request head."""
FD_RESERVE = 128
"""File descriptors kept free of client connections (the database, logs, the loop)."""


def default_max_connections() -> int:
    """Client connections the process can hold with FD_RESERVE descriptors to spare."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 4096
    return max(16, min(4096, soft - FD_RESERVE))


def raise_fd_limit() -> None:
    """Raise this process's soft file-descriptor limit to its hard limit (at most 65536)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def _error(status: int, reason: str, code: str, message: str) -> bytes:
    body = json.dumps({"detail": {"code": code, "message": message}}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a bounded head, a head timeout and a connection cap."""

    max_head_bytes = MAX_HEAD_BYTES
    head_timeout = HEAD_TIMEOUT
    max_connections = 4096

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any], _loop: Any = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._awaiting_head = True
        self._head_bytes = 0
        self._head_tail = b""
        self._head_since = 0.0
        self._head_timer: asyncio.TimerHandle | None = None

    @classmethod
    def configured(cls, *, max_head_bytes: int, head_timeout: float, max_connections: int) -> type[HttpToolsProtocol]:
        """A subclass with these limits (uvicorn takes the protocol as a class)."""
        limits = {"max_head_bytes": max_head_bytes, "head_timeout": head_timeout, "max_connections": max_connections}
        return type("GuardedHttpTools", (cls,), limits)

    # -- the head: its size and its time ------------------------------------------------------

    def _await_head(self) -> None:
        self._awaiting_head, self._head_bytes, self._head_tail = True, 0, b""
        self._head_since = self.loop.time()
        if self._head_timer is not None:
            self._head_timer.cancel()
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _head_done(self) -> None:
        self._awaiting_head = False
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self._awaiting_head or self.transport.is_closing():
            return
        if self._head_bytes:
            message = f"the request head was not complete within {self.head_timeout:g} s"
            self.transport.write(_error(408, "Request Timeout", "REQUEST_TIMEOUT", message))
        self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_head()
        if len(self.connections) > self.max_connections:
            self._make_room()

    def _make_room(self) -> None:
        """Close the connection that has waited longest for a request head (this one, if
        every other is being served)."""
        waiting = [
            c
            for c in self.connections
            if c is not self and isinstance(c, GuardedHttpToolsProtocol) and c._awaiting_head
        ]
        victim = min(waiting, key=lambda c: c._head_since) if waiting else self
        victim.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_done()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._awaiting_head and not self.transport.is_closing():
            room = self.max_head_bytes - self._head_bytes
            if len(data) > room:
                # The head must end within the bound: look for its blank line there.
                window = self._head_tail + data[: max(room, 0)]
                if b"\r\n\r\n" not in window and b"\n\n" not in window:
                    message = f"the request head is larger than {self.max_head_bytes:,} bytes"
                    self.transport.write(_error(431, "Request Header Fields Too Large", "HEADERS_TOO_LARGE", message))
                    self.transport.close()
                    self._head_done()
                    return
            self._head_bytes += len(data)
            self._head_tail = data[-3:]
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._head_done()
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        # httptools could not parse the request (a bad request line, method, header or
        # chunk): uvicorn would answer in plain text; answer in the one error shape.
        message = "the request is not valid HTTP/1.1 (request line, method, headers or body framing)"
        self.transport.write(_error(400, "Bad Request", "BAD_REQUEST", message))
        self.transport.close()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._await_head()
