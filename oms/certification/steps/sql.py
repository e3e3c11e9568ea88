"""``sql``: a query against the system's backend database itself (the ``sql``
extension: a DuckDB file, or a PostgreSQL database, with the reference schema; read by
``oms.certification.backend``). Never needed by a mandatory case: other systems keep
their books however they like.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from oms.certification.steps._base import CaseRun, Spec, StepKind, register
from oms.certification.values import StepFailed, same_rows, text


class SqlExpect(Spec):
    rows: list[list[Any]] | None = None
    equals_gateway_count: bool = False


class SqlSpec(Spec):
    action: Literal["sql"]
    query: str
    params: list[str | int] = Field(default_factory=list)
    """Values, or ``@alias`` for that order's id."""
    expect: SqlExpect


@register
class Sql(StepKind):
    names = ("sql",)
    Spec = SqlSpec
    needs_text = "sql"

    def needs(self, spec: Any) -> set[str]:
        return {"sql"}

    def uses(self, spec: Any) -> list[tuple[str, str]]:
        return [(p[1:], "a sql parameter") for p in spec.params if isinstance(p, str) and p.startswith("@")]

    def describe(self, spec: Any) -> str:
        return "sql " + " ".join(spec.query.split())

    def expected(self, spec: Any) -> str:
        if spec.expect.equals_gateway_count:
            return "as many rows as the gateway lists orders"
        return f"rows={text(spec.expect.rows)}"

    def run(self, case: CaseRun, spec: Any) -> str:
        expect = spec.expect
        gateway_count = None
        if expect.equals_gateway_count:
            case.target.resume()
            gateway_count = len(case.gw.orders())
        params = [
            case.aliases[p[1:]].order_id if isinstance(p, str) and p.startswith("@") else case.template(p)
            for p in spec.params
        ]
        rows = case.target.sql(spec.query, params)
        shown = [[text(v) for v in row] for row in rows]
        query = " ".join(spec.query.split())
        case.evidence("sql", [query, "; ".join(", ".join(r) for r in shown)])
        if expect.rows is not None and not same_rows(rows, expect.rows):
            raise StepFailed(f"rows {shown}, expected {text(expect.rows)}")
        if gateway_count is not None:
            (count,) = rows[0]
            case.evidence("sql", ["orders the gateway reports", str(gateway_count)])
            if count != gateway_count:
                raise StepFailed(f"the database has {count} orders, the gateway reports {gateway_count}")
            return f"{count} rows == {gateway_count} orders from the gateway"
        return "; ".join(", ".join(r) for r in shown)
