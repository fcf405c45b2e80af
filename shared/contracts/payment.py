"""Events of payment: charges and refunds."""

from __future__ import annotations

from typing import ClassVar
from uuid import UUID

from shared.contracts.event import Event
from shared.contracts.types import CurrencyCode, CustomerId, Money, Text


class PaymentCompleted(Event):
    owner: ClassVar[str] = "payment"

    payment_id: UUID
    customer_id: CustomerId
    amount: Money
    currency: CurrencyCode


class PaymentFailed(Event):
    owner: ClassVar[str] = "payment"

    customer_id: CustomerId
    amount: Money
    currency: CurrencyCode
    reason: Text


class PaymentRefunded(Event):
    owner: ClassVar[str] = "payment"

    payment_id: UUID
    amount: Money
    currency: CurrencyCode
    reason: Text
