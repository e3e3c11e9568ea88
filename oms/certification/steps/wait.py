"""``wait``: let the system's clock move on (a few milliseconds) before the next step, so
a later ``updated_at`` can be told from an earlier one. Needs nothing of the target; the
pause is the harness's own and is never judged.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from oms.certification.steps._base import CaseRun, Spec, StepKind, register


class WaitSpec(Spec):
    action: Literal["wait"]
    ms: int = Field(ge=1, le=1000)


@register
class Wait(StepKind):
    names = ("wait",)
    Spec = WaitSpec

    def needs(self, spec: Any) -> set[str]:
        return set()

    def describe(self, spec: Any) -> str:
        return f"wait {spec.ms} ms"

    def expected(self, spec: Any) -> str:
        return "time passes"

    def run(self, case: CaseRun, spec: Any) -> str:
        case.target.wait(spec.ms / 1000)
        return f"waited {spec.ms} ms"
