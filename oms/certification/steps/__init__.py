"""The step kinds of the checklist, one module each, found through ``REGISTRY``.

    commands   create, modify, cancel, execute (core); get (read)
    listing    orders, mark, unchanged (core)
    audit      events (audit; the whole log: events_log)
    replay     replay (audit)
    race       race (core)
    faults     restart (restart), crash, crash_stream (crash)
    sql        sql (the sql extension)
    http       http (raw_http)
    fix        fix (the fix face: one session check, message by message)
    wait       wait (nothing: the harness pauses)

A new kind is one module here: its spec, needs, run and rendering, registered with
``@register``; the loader, the runner and the documents need no change.
"""

from __future__ import annotations

from oms.certification.steps import audit, commands, faults, fix, http, listing, race, replay, sql, wait  # noqa: F401
from oms.certification.steps._base import REGISTRY, CaseRun, StepKind

__all__ = ["REGISTRY", "CaseRun", "StepKind"]
