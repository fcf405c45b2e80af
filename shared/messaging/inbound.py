"""A message as the consumer holds it while a batch is handled: where it came from, what it says, and
how far it got."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.contracts import Envelope, Event
from shared.messaging.errors import PoisonMessage
from shared.messaging.headers import KafkaHeaders
from shared.messaging.routing import Routing


@dataclass(slots=True)
class Inbound:
    msg: Any  # the client's message, opaque here: kept whole for a dead letter
    topic: str  # topic, partition and offset as read once (each is a call into the client)
    partition: int
    offset: int
    headers: KafkaHeaders  # read once: the client builds a new list on every call
    routing: Routing  # event type, replay group, trace context: found and validated in one pass
    envelope: Envelope | None = None
    event: Event | None = None
    poison: PoisonMessage | None = None
    attempts: int = 0
    dead_lettered: bool = False
    committed: bool = False  # done with in the database: handled, skipped, or handled before
