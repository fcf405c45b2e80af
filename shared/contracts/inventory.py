"""Events of inventory: reservations, their release, and the stock that ships."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.event import Event
from shared.contracts.types import Quantity, Sku, Text


class StockLine(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    sku: Sku
    quantity: Quantity


class StockReserved(Event):
    owner: ClassVar[str] = "inventory"

    lines: tuple[StockLine, ...] = Field(min_length=1)


class StockReservationFailed(Event):
    owner: ClassVar[str] = "inventory"

    reason: Text
    sku: Sku | None = None


class StockReleased(Event):
    owner: ClassVar[str] = "inventory"

    lines: tuple[StockLine, ...] = Field(min_length=1)
    reason: Text


class StockShipped(Event):
    owner: ClassVar[str] = "inventory"

    lines: tuple[StockLine, ...] = Field(min_length=1)
    tracking_number: Text
