"""How `oms serve --workers N` holds its port: only its own SO_REUSEPORT workers may listen
on it, whether or not one listens yet (real sockets on loopback)."""

from __future__ import annotations

import socket

import pytest

from conftest import free_port
from oms.supervisor import hold_port, listening_socket


def test_a_held_port_admits_the_workers_and_no_one_else() -> None:
    port = free_port()
    held = hold_port("127.0.0.1", port)
    try:
        lone = socket.socket()
        lone.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        with lone, pytest.raises(OSError):  # a lone server, while no worker listens yet
            lone.bind(("127.0.0.1", port))
        with pytest.raises(OSError):  # a second supervisor
            hold_port("127.0.0.1", port).close()
        workers = [listening_socket("127.0.0.1", port, reuse_port=True) for _ in range(2)]
        with pytest.raises(OSError):  # nor once they listen
            hold_port("127.0.0.1", port).close()
        for worker in workers:
            worker.close()
    finally:
        held.close()
    listening_socket("127.0.0.1", port).close()  # released at the end
