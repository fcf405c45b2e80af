"""Events of shipping: a shipment, why there is none, or that it was called off."""

from __future__ import annotations

from typing import ClassVar
from uuid import UUID

from shared.contracts.event import Event
from shared.contracts.types import CountryCode, Text


class ShipmentCreated(Event):
    owner: ClassVar[str] = "shipping"

    shipment_id: UUID
    tracking_number: Text
    country: CountryCode


class ShipmentFailed(Event):
    owner: ClassVar[str] = "shipping"

    reason: Text


class ShipmentCancelled(Event):
    owner: ClassVar[str] = "shipping"

    shipment_id: UUID
    reason: Text
