"""Payment's rules, free of any infrastructure: who can be charged, and what a refund gives back."""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum
from uuid import UUID, uuid5

PAYMENT_NAMESPACE = UUID("6f1c9a52-63a4-4a7c-9d0b-6a8f1e2c4b11")


@dataclass(frozen=True)
class Customer:
    customer_id: str
    balance: Decimal
    blocked: bool = False


class PaymentStatus(StrEnum):
    CHARGED = "charged"
    FAILED = "failed"
    REFUNDED = "refunded"


@dataclass(frozen=True)
class Payment:
    order_id: UUID
    payment_id: UUID
    customer_id: str
    amount: Decimal
    currency: str
    status: PaymentStatus
    reason: str | None = None


@dataclass(frozen=True)
class Cancellation:
    """An order payment heard was cancelled: nothing is charged for it from then on, however late its
    OrderPlaced comes."""

    order_id: UUID
    reason: str


class Refusal(StrEnum):
    UNKNOWN_CUSTOMER = "unknown customer"
    BLOCKED = "customer is blocked"
    INSUFFICIENT_FUNDS = "insufficient funds"


def payment_id_for(order_id: UUID) -> UUID:
    """One payment per order, with an id anyone can derive: charging twice is impossible by construction."""
    return uuid5(PAYMENT_NAMESPACE, str(order_id))


def charge(
    customer: Customer | None, customer_id: str, order_id: UUID, amount: Decimal, currency: str
) -> tuple[Customer | None, Payment]:
    """Charge the order's total: the customer afterwards, and the payment (charged or failed)."""
    refusal = (
        Refusal.UNKNOWN_CUSTOMER
        if customer is None
        else Refusal.BLOCKED
        if customer.blocked
        else Refusal.INSUFFICIENT_FUNDS
        if customer.balance < amount
        else None
    )
    pid = payment_id_for(order_id)
    if refusal is not None:
        return customer, Payment(
            order_id, pid, customer_id, amount, currency, PaymentStatus.FAILED, refusal.value
        )
    assert customer is not None
    charged = replace(customer, balance=customer.balance - amount)
    return charged, Payment(order_id, pid, customer_id, amount, currency, PaymentStatus.CHARGED)


def refund(customer: Customer, payment: Payment, reason: str) -> tuple[Customer, Payment]:
    """Give back exactly what was charged. Only a charged payment can be refunded."""
    if payment.status is not PaymentStatus.CHARGED:
        raise ValueError(f"payment {payment.payment_id} is {payment.status}, not charged")
    return (
        replace(customer, balance=customer.balance + payment.amount),
        replace(payment, status=PaymentStatus.REFUNDED, reason=reason),
    )
