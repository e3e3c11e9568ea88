"""The process the embedded crash cases kill with SIGKILL (and the writes it makes).

    python -m oms.certification._child

Imports the engine, prints ``READY``, then reads one JSON line from stdin:
``{"path": DB, "clock_start": ISO or "", "mode": ..., ...}``. It opens the database only
then, so a standby child can be started early and its start-up overlaps other cases.

- ``"mode": "ops", "ops": [...]``: runs the writes, prints one JSON result per write
  (each printed only after its commit), prints ``IDLE`` and waits to be killed;
- ``"mode": "stream", "token": T``: creates orders without pause, printing each one after
  its commit, until it is killed.

It never closes the database: the parent kills it with the file open. Imports nothing
but ``oms`` and the engine (the package's ``__init__`` is lazy).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Any

import oms
import oms.engine
from oms.errors import OMSError
from oms.gateway import Gateway

Op = dict[str, Any]
"""One write for a crash: {action, kwargs, order_id | order_ref, as}."""


def apply_ops(
    gw: Gateway, ops: list[Op], on_result: Callable[[dict[str, Any]], None] | None = None
) -> list[dict[str, Any]]:
    """Run ``ops`` in order on ``gw``; each result is {as, ok, order | code, message}.

    Used by the crash child process (and, for a managed server, by the runner itself)."""
    ids: dict[str, int] = {}
    out = []
    for op in ops:
        try:
            order_id = op.get("order_id")
            if op.get("order_ref") is not None:
                order_id = ids[op["order_ref"]]
            kwargs = op.get("kwargs", {})
            command = gw.create if op["action"] == "create" else partial(getattr(gw, op["action"]), order_id)
            order = command(**kwargs)
            if op.get("as"):
                ids[op["as"]] = order.order_id
            result: dict[str, Any] = {"as": op.get("as"), "ok": True, "order": order.to_dict()}
        except OMSError as e:
            result = {"as": op.get("as"), "ok": False, "code": e.code, "message": e.message}
        out.append(result)
        if on_result:
            on_result(result)
    return out


def stream_order(token: str, i: int) -> dict[str, Any]:
    """The i-th create of a crash stream (shared by the child process and the managed target)."""
    return {"symbol": "STREAM", "side": "BUY", "quantity": i + 1, "price": "1", "client_order_id": f"{token}-S{i}"}


def main() -> int:
    out = sys.stdout
    out.write("READY\n")
    out.flush()
    line = sys.stdin.readline()
    if not line:  # the parent no longer needs this standby child
        return 0
    request = json.loads(line)
    start = request.get("clock_start")
    gw = oms.open(request["path"], clock=oms.SimulatedClock(start=datetime.fromisoformat(start)) if start else None)

    def report(result: dict[str, Any]) -> None:
        out.write(json.dumps(result, default=str) + "\n")
        out.flush()

    if request["mode"] == "ops":
        apply_ops(gw, request["ops"], on_result=report)
        out.write("IDLE\n")
        out.flush()
        while True:  # wait for SIGKILL
            time.sleep(60)
    i = 0
    while True:
        report(gw.create(**stream_order(request["token"], i)).to_dict())
        i += 1


if __name__ == "__main__":
    sys.exit(main())
