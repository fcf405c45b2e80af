"""Payment's tables and the unit of work its handlers get (SQLAlchemy Core, schema `payment`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Connection,
    DateTime,
    MetaData,
    Numeric,
    Table,
    Text,
    Uuid,
    func,
)

from services.payment.domain import Cancellation, Customer, Payment, PaymentStatus
from shared.messaging.repository import BatchStatements, Repository
from shared.messaging.unit_of_work import UnitOfWork

metadata = MetaData()

customers = Table(
    "customers",
    metadata,
    Column("customer_id", Text, primary_key=True),
    Column("balance", Numeric(12, 2), nullable=False),
    Column("blocked", Boolean, nullable=False, server_default="false"),
    CheckConstraint("balance >= 0", name="customers_balance_not_negative"),
)

payments = Table(
    "payments",
    metadata,
    Column("order_id", Uuid, primary_key=True),  # one payment per order, ever
    Column("payment_id", Uuid, nullable=False, unique=True),
    Column("customer_id", Text, nullable=False),
    Column("amount", Numeric(12, 2), nullable=False),
    Column("currency", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("reason", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)


# The orders payment heard were cancelled, whether it had charged them or not (domain.Cancellation).
cancelled_orders = Table(
    "cancelled_orders",
    metadata,
    Column("order_id", Uuid, primary_key=True),
    Column("reason", Text, nullable=False),
    Column("cancelled_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)


class Customers(Repository[str, Customer]):
    statements = BatchStatements(customers, "customer_id")
    saved_columns = ("balance", "blocked")

    def entity(self, row: Any) -> Customer:
        return Customer(row.customer_id, row.balance, row.blocked)

    def key_of(self, customer: Customer) -> str:
        return customer.customer_id

    def row(self, customer: Customer) -> dict[str, Any]:
        return {"customer_id": customer.customer_id, "balance": customer.balance, "blocked": customer.blocked}


class Payments(Repository[UUID, Payment]):
    statements = BatchStatements(payments, "order_id")
    saved_columns = ("status", "reason")
    on_save = "updated_at = now()"

    def entity(self, row: Any) -> Payment:
        return Payment(
            row.order_id,
            row.payment_id,
            row.customer_id,
            row.amount,
            row.currency,
            PaymentStatus(row.status),
            row.reason,
        )

    def key_of(self, payment: Payment) -> UUID:
        return payment.order_id

    def row(self, payment: Payment) -> dict[str, Any]:
        return {
            "order_id": payment.order_id,
            "payment_id": payment.payment_id,
            "customer_id": payment.customer_id,
            "amount": payment.amount,
            "currency": payment.currency,
            "status": payment.status.value,
            "reason": payment.reason,
        }


class Cancellations(Repository[UUID, Cancellation]):
    statements = BatchStatements(cancelled_orders, "order_id")
    on_add_conflict = "ON CONFLICT (order_id) DO NOTHING"  # heard twice: the first reason stays

    def entity(self, row: Any) -> Cancellation:
        return Cancellation(row.order_id, row.reason)

    def key_of(self, cancellation: Cancellation) -> UUID:
        return cancellation.order_id

    def row(self, cancellation: Cancellation) -> dict[str, Any]:
        return {"order_id": cancellation.order_id, "reason": cancellation.reason}


class PaymentUnitOfWork(UnitOfWork):
    def __init__(self, connection: Connection) -> None:
        super().__init__(connection)
        self.payments = Payments(connection)
        self.cancellations = Cancellations(connection)
        self.customers = Customers(connection)
        # Payments first: customers' keys come from them.
        self.stores = (self.payments, self.cancellations, self.customers)


def add_customers(conn: Connection, new: Iterable[Customer]) -> None:
    """Seeding: customers not known yet. One that is keeps its balance: money appears only by refunds,
    so that charged minus refunded always matches what was spent."""
    Customers(conn).insert_now(new, "ON CONFLICT (customer_id) DO NOTHING")
