"""The certification pack: the checklist as data, one runner for any gateway, reports.

    from oms.certification import load, Runner, EmbeddedTarget
    result = Runner(EmbeddedTarget()).run()      # a fresh embedded database, simulated clock
    result.verdict                               # CERTIFIED | FAILED | INCOMPLETE

Modules: ``checklist`` (load and check ``certification/checklist.yaml``, generate the
lifecycle cases), ``targets`` (embedded, URL, managed server; real restarts and kill -9),
``runner`` (steps, expectations, evidence), ``report`` (HTML, JUnit XML, Markdown, run
history), ``docs`` (TEST_CASES.md, CHECKLIST.md), ``cli`` (``oms certify``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from oms.certification.checklist import Case, Checklist, ChecklistError, Group, load
    from oms.certification.runner import FAIL, NOT_RUN, PASS, CaseResult, Runner, RunResult
    from oms.certification.targets import EmbeddedTarget, ManagedTarget, RemoteTarget, Target, make_target

# Loaded on first use, so the kill -9 child (python -m oms.certification._child) starts fast.
_HOME = {
    **dict.fromkeys(("Case", "Checklist", "ChecklistError", "Group", "load"), "checklist"),
    **dict.fromkeys(("FAIL", "NOT_RUN", "PASS", "CaseResult", "RunResult", "Runner"), "runner"),
    **dict.fromkeys(("EmbeddedTarget", "ManagedTarget", "RemoteTarget", "Target", "make_target"), "targets"),
}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(importlib.import_module(f"oms.certification.{_HOME[name]}"), name)
    raise AttributeError(f"module 'oms.certification' has no attribute {name!r}")


__all__ = [
    "FAIL",
    "NOT_RUN",
    "PASS",
    "Case",
    "CaseResult",
    "Checklist",
    "ChecklistError",
    "EmbeddedTarget",
    "Group",
    "ManagedTarget",
    "RemoteTarget",
    "RunResult",
    "Runner",
    "Target",
    "load",
    "make_target",
]
