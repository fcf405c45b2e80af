"""Payment's tables and the unit of work its handlers get (SQLAlchemy Core, schema `payment`)."""

from __future__ import annotations

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
    bindparam,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import insert

from services.payment.domain import Customer, Payment, PaymentStatus
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


# Statements built once, run with parameters: building one per message (and its cache key) costs
# more than running it.
_LOCK_CUSTOMER = select(customers).where(customers.c.customer_id == bindparam("key")).with_for_update()
_SAVE_CUSTOMER = customers.update().where(customers.c.customer_id == bindparam("key"))
_LOCK_PAYMENT = select(payments).where(payments.c.order_id == bindparam("key")).with_for_update()
_ADD_PAYMENT = payments.insert()
_SAVE_PAYMENT = payments.update().where(payments.c.order_id == bindparam("key")).values(updated_at=func.now())


class Customers:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get_for_update(self, customer_id: str) -> Customer | None:
        row = self._conn.execute(_LOCK_CUSTOMER, {"key": customer_id}).first()
        return None if row is None else Customer(row.customer_id, row.balance, row.blocked)

    def save(self, customer: Customer) -> None:
        self._conn.execute(
            _SAVE_CUSTOMER,
            {"key": customer.customer_id, "balance": customer.balance, "blocked": customer.blocked},
        )

    def add(self, customer: Customer) -> None:
        """Seeding: a customer not known yet. One that is keeps its balance: money appears only by
        refunds, so that charged minus refunded always matches what was spent."""
        self._conn.execute(
            insert(customers)
            .values(customer_id=customer.customer_id, balance=customer.balance, blocked=customer.blocked)
            .on_conflict_do_nothing(index_elements=[customers.c.customer_id])
        )


class Payments:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get_for_update(self, order_id: UUID) -> Payment | None:
        row = self._conn.execute(_LOCK_PAYMENT, {"key": order_id}).first()
        if row is None:
            return None
        return Payment(
            row.order_id,
            row.payment_id,
            row.customer_id,
            row.amount,
            row.currency,
            PaymentStatus(row.status),
            row.reason,
        )

    def add(self, payment: Payment) -> None:
        self._conn.execute(
            _ADD_PAYMENT,
            {
                "order_id": payment.order_id,
                "payment_id": payment.payment_id,
                "customer_id": payment.customer_id,
                "amount": payment.amount,
                "currency": payment.currency,
                "status": payment.status.value,
                "reason": payment.reason,
            },
        )

    def save(self, payment: Payment) -> None:
        self._conn.execute(
            _SAVE_PAYMENT, {"key": payment.order_id, "status": payment.status.value, "reason": payment.reason}
        )


class PaymentUnitOfWork(UnitOfWork):
    def __init__(self, connection: Connection) -> None:
        super().__init__(connection)
        self.customers = Customers(connection)
        self.payments = Payments(connection)
