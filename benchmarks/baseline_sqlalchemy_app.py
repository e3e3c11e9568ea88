"""The original specification's stack, for comparison only: FastAPI + SQLAlchemy + SQLite,
written the way its tutorial shapes it (pydantic request/response models, a Session per
request through ``Depends``, one ORM row per order, commit per request).

Same endpoints and lifecycle rules as ``oms.api`` (POST /order, PUT/DELETE /order/{id},
POST /order/{id}/execute, GET /orders, GET /order/{id}); no event log. Run with
``BASELINE_DB=/tmp/base.sqlite uvicorn benchmarks.baseline_sqlalchemy_app:app``.
``noop_app`` in this module answers the same routes with a constant and does no work: the
ceiling of FastAPI + uvicorn on this machine.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy import DateTime, Integer, Numeric, String, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

DB_URL = "sqlite:///" + os.environ.get("BASELINE_DB", "baseline.sqlite")
engine = create_engine(DB_URL, connect_args={"check_same_thread": False})
SessionLocal = sessionmaker(bind=engine, autoflush=False)


class Base(DeclarativeBase):
    pass


class OrderRow(Base):
    __tablename__ = "orders"
    order_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    symbol: Mapped[str] = mapped_column(String(16))
    side: Mapped[str] = mapped_column(String(4))
    order_type: Mapped[str] = mapped_column(String(6))
    quantity: Mapped[int] = mapped_column(Integer)
    price: Mapped[Decimal | None] = mapped_column(Numeric(16, 4), nullable=True)
    status: Mapped[str] = mapped_column(String(10), index=True)
    executed_price: Mapped[Decimal | None] = mapped_column(Numeric(16, 4), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


Base.metadata.create_all(engine)


class OrderIn(BaseModel):
    symbol: str = Field(pattern=r"^[A-Za-z0-9._-]{1,16}$")
    side: Literal["BUY", "SELL"]
    order_type: Literal["LIMIT", "MARKET"] = "LIMIT"
    quantity: int = Field(ge=1, le=10**9)
    price: Decimal | None = Field(None, gt=0, lt=10**12, decimal_places=4)


class OrderUpdate(BaseModel):
    quantity: int | None = Field(None, ge=1, le=10**9)
    price: Decimal | None = Field(None, gt=0, lt=10**12, decimal_places=4)


class Execution(BaseModel):
    price: Decimal | None = Field(None, gt=0, lt=10**12, decimal_places=4)


class OrderOut(BaseModel):
    order_id: int
    symbol: str
    side: str
    order_type: str
    quantity: int
    price: Decimal | None
    status: str
    executed_price: Decimal | None
    created_at: datetime
    updated_at: datetime

    model_config = {"from_attributes": True}


def get_db() -> Iterator[Session]:
    db = SessionLocal()
    try:
        yield db
    finally:
        db.close()


DB = Annotated[Session, Depends(get_db)]
app = FastAPI(title="baseline OMS (FastAPI + SQLAlchemy + SQLite)")


def _load(db: Session, order_id: int) -> OrderRow:
    row = db.get(OrderRow, order_id)
    if row is None:
        raise HTTPException(404, "order not found")
    return row


@app.post("/order", status_code=201, response_model=OrderOut)
def create_order(body: OrderIn, db: DB) -> OrderRow:
    now = datetime.now(UTC)
    row = OrderRow(**body.model_dump(), status="NEW", created_at=now, updated_at=now)
    db.add(row)
    db.commit()
    db.refresh(row)
    return row


@app.put("/order/{order_id}", response_model=OrderOut)
def modify_order(order_id: int, body: OrderUpdate, db: DB) -> OrderRow:
    row = _load(db, order_id)
    if row.status != "NEW":
        raise HTTPException(409, f"cannot modify order {order_id}: status is {row.status}")
    if body.quantity is not None:
        row.quantity = body.quantity
    if body.price is not None:
        row.price = body.price
    row.status, row.updated_at = "MODIFIED", datetime.now(UTC)
    db.commit()
    db.refresh(row)
    return row


@app.delete("/order/{order_id}", response_model=OrderOut)
def cancel_order(order_id: int, db: DB) -> OrderRow:
    row = _load(db, order_id)
    if row.status != "NEW":
        raise HTTPException(409, f"cannot cancel order {order_id}: status is {row.status}")
    row.status, row.updated_at = "CANCELLED", datetime.now(UTC)
    db.commit()
    db.refresh(row)
    return row


@app.post("/order/{order_id}/execute", response_model=OrderOut)
def execute_order(order_id: int, db: DB, body: Execution | None = None) -> OrderRow:
    row = _load(db, order_id)
    if row.status not in ("NEW", "MODIFIED"):
        raise HTTPException(409, f"cannot execute order {order_id}: status is {row.status}")
    row.executed_price = body.price if body and body.price is not None else row.price
    row.status, row.updated_at = "EXECUTED", datetime.now(UTC)
    db.commit()
    db.refresh(row)
    return row


@app.get("/orders", response_model=list[OrderOut])
def list_orders(db: DB, status: str | None = None, symbol: str | None = None) -> list[OrderRow]:
    query = select(OrderRow).order_by(OrderRow.order_id)
    if status:
        query = query.where(OrderRow.status == status)
    if symbol:
        query = query.where(OrderRow.symbol == symbol)
    return list(db.scalars(query))


@app.get("/order/{order_id}", response_model=OrderOut)
def get_order(order_id: int, db: DB) -> OrderRow:
    return _load(db, order_id)


# ---- the ceiling: same routes, no work -----------------------------------------------------

_CONSTANT = b'{"order_id": 1, "status": "NEW"}'
noop_app = FastAPI(title="no-op")


@noop_app.post("/order", status_code=201)
async def noop_create() -> Response:
    return Response(_CONSTANT, 201, media_type="application/json")


@noop_app.put("/order/{order_id}")
@noop_app.delete("/order/{order_id}")
@noop_app.post("/order/{order_id}/execute")
@noop_app.get("/order/{order_id}")
async def noop_command(order_id: int) -> Response:
    return Response(_CONSTANT, media_type="application/json")
