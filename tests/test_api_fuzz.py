"""Schema-driven fuzzing of the OpenAPI document with schemathesis: valid and invalid
requests for every operation, a bounded number of cases. No 5xx, every response as
documented, schema-invalid input refused with a 4xx, and a refused request changes no
order."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

import oms
import oms.engine
from oms.api import create_app


class Slot:
    """The gateway the fuzzed app serves: one engine for the whole module (see ``engine``)."""

    current: oms.engine.Engine

    def __getattr__(self, name: str) -> object:
        return getattr(self.current, name)


SLOT = Slot()
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(SLOT))  # type: ignore[arg-type]
schema.config.generation.update(max_examples=30)

SEEN: Counter[tuple[str, int]] = Counter()  # (operation, status class) -> count

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)
def test_no_generated_request_breaks_the_contract_or_changes_an_order_it_refuses(
    case: schemathesis.Case,
) -> None:
    before = SLOT.current.orders()
    response = case.call_and_validate(checks=CHECKS)
    SEEN[(f"{case.method} {case.path}", response.status_code // 100)] += 1
    assert response.status_code < 500
    if response.status_code >= 400:
        assert SLOT.current.orders() == before, f"{case.method} {case.path} was refused but changed orders"
        assert set(response.json()) == {"detail"} and response.json()["detail"]["code"]
    elif case.method == "GET":
        assert SLOT.current.orders() == before


def test_the_fuzzing_reached_both_accepted_and_refused_requests_of_every_command() -> None:
    for operation in ("POST /order", "PUT /order/{order_id}", "DELETE /order/{order_id}",
                      "POST /order/{order_id}/execute"):  # fmt: skip
        assert SEEN[(operation, 4)] > 0, (operation, SEEN)
    assert SEEN[("POST /order", 2)] > 0 and SEEN[("GET /orders", 2)] > 0, SEEN
    assert SLOT.current.replay() == SLOT.current.orders()


@pytest.fixture(scope="module", autouse=True)
def engine() -> Iterator[oms.engine.Engine]:
    """One engine for the whole run, so commands also meet orders that exist: a few are
    created up front, and generated creates add more."""
    with oms.open(":memory:", clock=oms.SimulatedClock()) as gw:
        for _ in range(3):
            gw.create(symbol="INFY", side="BUY", quantity=10, price="100")
        gw.create(symbol="TCS", side="SELL", quantity=5, order_type="MARKET")
        SLOT.current = gw
        yield gw
        del SLOT.current
