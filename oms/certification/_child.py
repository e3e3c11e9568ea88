"""The process the embedded crash cases kill with SIGKILL.

    python -m oms.certification._child DB_PATH [CLOCK_START]

Opens the embedded engine on DB_PATH and reads one JSON line from stdin:

- ``{"mode": "ops", "ops": [...]}``: runs the writes, prints one JSON result per write
  (each printed only after its commit), prints ``IDLE`` and waits to be killed;
- ``{"mode": "stream", "token": T}``: creates orders without pause, printing each one
  after its commit, until it is killed.

It never closes the database: the parent kills it with the file open.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime

import oms
from oms.certification.targets import _stream_order, apply_ops


def main(argv: list[str]) -> int:
    path = argv[0]
    clock = oms.SimulatedClock(start=datetime.fromisoformat(argv[1])) if len(argv) > 1 and argv[1] else None
    gw = oms.open(path, clock=clock)
    request = json.loads(sys.stdin.readline())
    out = sys.stdout

    def report(result: dict[str, object]) -> None:
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
        order = gw.create(**_stream_order(request["token"], i))
        out.write(json.dumps(order.to_dict(), default=str) + "\n")
        out.flush()
        i += 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
