"""``http``: one raw HTTP request, byte for byte as written (the ``raw_http`` face of an
HTTP target): malformed JSON, wrong types, unknown fields, odd ids. DESIGN.md: never a
500; every refusal in the one shape ``{"detail": {"code", "message"}}`` (a 422 with its
``errors`` list), with the HTTP status of its code.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from oms.certification.steps._base import CaseRun, Code, Spec, StepKind, register
from oms.certification.values import StepFailed, text
from oms.certification.wire import error_shape_problems, leaf

NOT_IMPLEMENTED = 501


class HttpExpect(Spec):
    status: int | list[int] | None = None
    code: Code | None = None
    fields: list[str] = Field(default_factory=list)
    message_contains: list[str] = Field(default_factory=list)
    any_shape: bool = False
    """Only 'no 5xx' (but 501, RFC 9110's answer to a method a server does not implement):
    for requests outside the contract (a method it does not name)."""


class HttpSpec(Spec):
    action: Literal["http"]
    method: Literal["GET", "POST", "PUT", "DELETE", "PATCH"]
    path: str
    body: str | None = None
    json_: Any = Field(default=None, alias="json")
    expect: HttpExpect

    @model_validator(mode="after")
    def _one_body(self) -> HttpSpec:
        if self.body is not None and self.json_ is not None:
            raise ValueError("a request has a body or json, not both")
        return self


@register
class Http(StepKind):
    names = ("http",)
    Spec = HttpSpec
    needs_text = "raw_http"

    def needs(self, spec: Any) -> set[str]:
        """The HTTP face, and the tier a GET names: ``GET /order/{id}`` is read,
        ``GET /order/{id}/events`` audit, ``GET /events`` the events_log extension."""
        out = {"raw_http"}
        path = spec.path.split("?", 1)[0]
        if spec.method == "GET":
            if path == "/events":
                out.add("events_log")
            elif path.startswith("/order/") and path.endswith("/events"):
                out.add("audit")
            elif path.startswith("/order/"):
                out.add("read")
        return out

    def describe(self, spec: Any) -> str:
        body = spec.body if spec.body is not None else (text(spec.json_) if spec.json_ is not None else "")
        return f"http {spec.method} {spec.path} {body}".strip()

    def expected(self, spec: Any) -> str:
        e = spec.expect
        anything = "no 5xx (501 allowed)" if e.any_shape else "no 5xx"
        parts = [f"status {e.status}"] if e.status is not None else [anything]
        parts += [f"code {e.code}"] if e.code else []
        parts += [f"naming {', '.join(e.fields)}"] if e.fields else []
        parts += [f"message mentions {', '.join(e.message_contains)}"] if e.message_contains else []
        return ", ".join(parts) + ("" if e.any_shape else "; the error shape")

    def run(self, case: CaseRun, spec: Any) -> str:
        path = case.template(spec.path, orders=True)
        status, payload = case.target.http(spec.method, path, body=spec.body, json_body=spec.json_)
        detail = payload.get("detail") if isinstance(payload, dict) else None
        code = detail.get("code") if isinstance(detail, dict) else None
        errors = detail.get("errors") if isinstance(detail, dict) else None
        fields = [leaf(str(e.get("field"))) for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []
        body = spec.body if spec.body is not None else (text(spec.json_) if spec.json_ is not None else "")
        case.evidence("http", [f"{spec.method} {path}", str(body), str(status), str(code)])
        actual = f"{status} {code or ''}".strip() + (f" naming {', '.join(map(str, fields))}" if fields else "")
        expect = spec.expect
        problems = []
        if status >= 500 and not (expect.any_shape and status == NOT_IMPLEMENTED):
            problems.append("a server error for a client's mistake")
        wanted = expect.status
        if wanted is not None and status not in (wanted if isinstance(wanted, list) else [wanted]):
            problems.append(f"status {status}, expected {wanted}")
        if status >= 400 and not expect.any_shape:
            problems += error_shape_problems(status, payload)
        if expect.code and code != expect.code:
            problems.append(f"code {code}, expected {expect.code}")
        missing = [f for f in expect.fields if f not in fields]
        if missing:
            problems.append(f"errors do not name {', '.join(missing)}")
        message = str(detail.get("message", "")).lower() if isinstance(detail, dict) else ""
        unsaid = [m for m in expect.message_contains if m.lower() not in message]
        if unsaid:
            problems.append(f"the message does not mention {', '.join(unsaid)}")
        if problems:
            raise StepFailed(f"{actual}: " + "; ".join(problems))
        return actual
