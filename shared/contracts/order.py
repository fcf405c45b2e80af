"""Events of the order: placed by the storefront, completed or cancelled by the order service."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.contracts.event import Event
from shared.contracts.types import CountryCode, CurrencyCode, CustomerId, Money, Quantity, Sku, Text


class OrderLine(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    sku: Sku
    quantity: Quantity
    unit_price: Money


class Address(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    recipient: Text
    street: Text
    city: Text
    postal_code: Text
    country: CountryCode


class OrderPlaced(Event):
    # The storefront's fact, on a topic of its own: the order service's outcomes stay on order.events,
    # and whoever may place orders can publish nothing else.
    owner: ClassVar[str] = "storefront"

    customer_id: CustomerId
    items: tuple[OrderLine, ...] = Field(min_length=1)
    total: Money
    currency: CurrencyCode
    shipping_address: Address

    @model_validator(mode="after")
    def _total_is_the_sum_of_the_lines(self) -> OrderPlaced:
        expected = sum((line.unit_price * line.quantity for line in self.items), start=0)
        if self.total != expected:
            raise ValueError(f"total {self.total} is not the sum of the lines ({expected})")
        return self


class OrderCompleted(Event):
    owner: ClassVar[str] = "order"

    tracking_number: Text


class OrderCancelled(Event):
    owner: ClassVar[str] = "order"

    reason: Text
