"""What payment does when it hears of an order: charge it; and when the order cannot go on, or was
cancelled (however late either comes): refund it, and never charge it afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

from services.payment import domain
from services.payment.domain import Cancellation, PaymentStatus
from services.payment.storage import PaymentUnitOfWork
from shared.contracts import (
    Envelope,
    Event,
    OrderCancelled,
    OrderPlaced,
    PaymentCompleted,
    PaymentFailed,
    PaymentRefunded,
    ShipmentFailed,
    StockReservationFailed,
)


def charge_for_order(
    event: OrderPlaced, uow: PaymentUnitOfWork, envelope: Envelope
) -> list[PaymentCompleted | PaymentFailed]:
    if uow.payments.get(event.order_id) is not None:
        return []  # already charged (or refused): never twice
    if uow.cancellations.get(event.order_id) is not None:
        return []  # placed after it was cancelled (a late fact): nothing to charge, nothing to say
    customer = uow.customers.get(event.customer_id)
    customer, payment = domain.charge(
        customer, event.customer_id, event.order_id, event.total, event.currency
    )
    uow.payments.add(payment)
    if payment.status is PaymentStatus.FAILED:
        return [
            PaymentFailed(
                order_id=event.order_id,
                customer_id=event.customer_id,
                amount=event.total,
                currency=event.currency,
                reason=payment.reason or "",
            )
        ]
    assert customer is not None
    uow.customers.save(customer)
    return [
        PaymentCompleted(
            order_id=event.order_id,
            payment_id=payment.payment_id,
            customer_id=event.customer_id,
            amount=payment.amount,
            currency=payment.currency,
        )
    ]


def refund_payment(
    event: StockReservationFailed | ShipmentFailed, uow: PaymentUnitOfWork, envelope: Envelope
) -> list[PaymentRefunded]:
    return _refund(event.order_id, f"{event.type_name()}: {event.reason}", uow)


def refund_cancelled_order(
    event: OrderCancelled, uow: PaymentUnitOfWork, envelope: Envelope
) -> list[PaymentRefunded]:
    uow.cancellations.add(Cancellation(event.order_id, event.reason))
    return _refund(event.order_id, f"order cancelled: {event.reason}", uow)


def _refund(order_id: UUID, reason: str, uow: PaymentUnitOfWork) -> list[PaymentRefunded]:
    payment = uow.payments.get(order_id)
    if payment is None or payment.status is not PaymentStatus.CHARGED:
        return []  # nothing was charged, or it was refunded already
    customer = uow.customers.get(payment.customer_id)
    assert customer is not None, "a charged payment's customer exists"
    customer, refunded = domain.refund(customer, payment, reason)
    uow.customers.save(customer)
    uow.payments.save(refunded)
    return [
        PaymentRefunded(
            order_id=order_id,
            payment_id=payment.payment_id,
            amount=refunded.amount,
            currency=refunded.currency,
            reason=reason,
        )
    ]


def order_and_customer(event: OrderPlaced, uow: PaymentUnitOfWork, envelope: Envelope) -> Iterator[None]:
    uow.payments.want([event.order_id])
    uow.cancellations.want([event.order_id])
    yield  # customers are read in the second stage, all at once, whatever each needs them for
    uow.customers.want([event.customer_id])


def payment_and_its_customer(event: Event, uow: PaymentUnitOfWork, envelope: Envelope) -> Iterator[None]:
    uow.payments.want([event.order_id])
    yield
    payment = uow.payments.get(event.order_id)
    if payment is not None:
        uow.customers.want([payment.customer_id])


HANDLERS = {
    OrderPlaced: charge_for_order,
    StockReservationFailed: refund_payment,
    ShipmentFailed: refund_payment,
    OrderCancelled: refund_cancelled_order,
}
# What each handler reads, prefetched for the whole batch before any of them runs.
NEEDS = {
    OrderPlaced: order_and_customer,
    StockReservationFailed: payment_and_its_customer,
    ShipmentFailed: payment_and_its_customer,
    OrderCancelled: payment_and_its_customer,
}
PUBLISHES = [PaymentCompleted, PaymentFailed, PaymentRefunded]
