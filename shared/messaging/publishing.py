"""Turning a decided event into a message: envelope, Avro payload, headers and a producer span."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import NamedTuple
from uuid import UUID

from opentelemetry.trace import SpanKind

from shared.contracts import Event
from shared.messaging.codec import EventCodec
from shared.messaging.errors import OversizedEvent
from shared.messaging.headers import CORRELATION_ID, EVENT_ID, envelope_headers
from shared.messaging.ids import new_event_id
from shared.messaging.tracing import TRACEPARENT, forwarded_traceparent, inject_into, tracer
from shared.topics import events_topic


class OutgoingMessage(NamedTuple):
    """An event encoded for Kafka, as the outbox stores it and the relay sends it.

    A named tuple: one is made for every event a handler emits, and a tuple is the cheapest to make."""

    event_id: UUID
    event_type: str
    topic: str
    key: str
    payload: bytes
    headers: dict[str, str]


# librdkafka's message.max.bytes, which the relay's producer keeps, less room for the record's framing:
# an event larger than this could never leave the outbox, so it is refused where it is decided.
MAX_MESSAGE_BYTES = 1_000_000
_FRAMING = 4096


def owners_topic(event_type: type[Event]) -> str:
    return events_topic(event_type.owner)


class MessageFactory:
    def __init__(
        self,
        codec: EventCodec,
        source: str | None,
        topic_for: Callable[[type[Event]], str] = owners_topic,
    ) -> None:
        """`source`: the envelope's, the publisher's name; None names each event's owner (the operator
        publishing a fact in its owner's name: consumers refuse any other source on an owner's topic)."""
        self._codec = codec
        self._source = source
        self._topic_for = topic_for
        self._topics: dict[type[Event], str] = {}  # per event type, worked out on first use

    def topic_of(self, event_type: type[Event]) -> str:
        """Where events of this type are published (and so where they are expected to arrive)."""
        topic = self._topics.get(event_type)
        if topic is None:
            topic = self._topics[event_type] = self._topic_for(event_type)
        return topic

    def message(self, event: Event, correlation_id: UUID, causation_id: UUID | None) -> OutgoingMessage:
        """Wrap an event in its envelope; the trace context current now travels with it.

        Runs once per event a handler decides: the envelope is laid out once, as text, for both the
        Avro record (whose uuid fields take text as they are) and the Kafka headers."""
        event_type = type(event)
        name = event_type.type_name()
        registered = self._codec.registered(event_type)
        topic = self._topics.get(event_type) or self.topic_of(event_type)
        event_id = new_event_id()
        occurred_at = datetime.now(UTC)
        envelope = {
            "event_id": str(event_id),
            "event_type": name,
            "schema_version": registered.version,
            "occurred_at": occurred_at,
            "source": self._source or event_type.owner,
            "correlation_id": str(correlation_id),
            "causation_id": None if causation_id is None else str(causation_id),
        }
        key = str(event.order_id)
        headers = envelope_headers(envelope, occurred_at.isoformat())
        record = {"envelope": envelope, **event.model_dump()}
        forwarded = forwarded_traceparent()
        if forwarded is not None:
            headers[TRACEPARENT] = forwarded
            payload = self._codec.encode_record(event_type, record)
        else:
            attributes = {
                "messaging.system": "kafka",
                "messaging.operation.type": "create",
                "messaging.destination.name": topic,
                "messaging.message.id": headers[EVENT_ID],
                "messaging.kafka.message.key": key,
                "shop.event_type": name,
                "shop.correlation_id": headers[CORRELATION_ID],
                "shop.order_id": key,  # the key is the order id: what `shopctl trace` searches by
            }
            if causation_id is not None:
                attributes["shop.causation_id"] = envelope["causation_id"]
            with tracer.start_as_current_span(
                f"create {topic}", kind=SpanKind.PRODUCER, attributes=attributes
            ):
                inject_into(headers)
                payload = self._codec.encode_record(event_type, record)
        _check_size(name, key, payload, headers)
        return OutgoingMessage(event_id, name, topic, key, payload, headers)

    def check_size(self, event: Event) -> None:
        """OversizedEvent if the event could never be sent: for a producer to refuse a batch whole,
        before any of it is published. Its envelope is a stand-in of the real one's size; no span."""
        event_type = type(event)
        sample = str(new_event_id())
        envelope = {
            "event_id": sample,
            "event_type": event_type.type_name(),
            "schema_version": self._codec.registered(event_type).version,
            "occurred_at": datetime.now(UTC),
            "source": self._source or event_type.owner,
            "correlation_id": sample,
            "causation_id": sample,
        }
        payload = self._codec.encode_record(event_type, {"envelope": envelope, **event.model_dump()})
        headers = envelope_headers(envelope, envelope["occurred_at"].isoformat())
        headers[TRACEPARENT] = "00-" + "0" * 32 + "-" + "0" * 16 + "-01"
        _check_size(event_type.type_name(), str(event.order_id), payload, headers)


def _check_size(name: str, key: str, payload: bytes, headers: dict[str, str]) -> None:
    size = len(payload) + len(key) + sum(len(k) + len(v) for k, v in headers.items())
    if size > MAX_MESSAGE_BYTES - _FRAMING:
        raise OversizedEvent(
            f"{name} for order {key} would be a {size}-byte message; the broker takes at most "
            f"{MAX_MESSAGE_BYTES - _FRAMING}"
        )
