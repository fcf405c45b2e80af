"""Turning a decided event into a message: envelope, Avro payload, headers and a producer span."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID, uuid4

from opentelemetry.trace import SpanKind

from shared.contracts import Envelope, Event
from shared.messaging.codec import EventCodec
from shared.messaging.headers import CORRELATION_ID, EVENT_ID, envelope_headers
from shared.messaging.tracing import TRACEPARENT, forwarded_traceparent, inject_into, tracer
from shared.topics import events_topic


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """An event encoded for Kafka, as the outbox stores it and the relay sends it."""

    event_id: UUID
    event_type: str
    topic: str
    key: str
    payload: bytes
    headers: dict[str, str]


def owners_topic(event_type: type[Event]) -> str:
    return events_topic(event_type.owner)


class MessageFactory:
    def __init__(
        self, codec: EventCodec, source: str, topic_for: Callable[[type[Event]], str] = owners_topic
    ) -> None:
        self._codec = codec
        self._source = source
        self._topic_for = topic_for

    def message(self, event: Event, correlation_id: UUID, causation_id: UUID | None) -> OutgoingMessage:
        """Wrap an event in its envelope; the trace context current now travels with it."""
        registered = self._codec.registered(type(event))
        topic = self._topic_for(type(event))
        # Built from values we produced ourselves: no validation needed on this path.
        envelope = Envelope.model_construct(
            event_id=uuid4(),
            event_type=event.type_name(),
            schema_version=registered.version,
            occurred_at=datetime.now(UTC),
            source=self._source,
            correlation_id=correlation_id,
            causation_id=causation_id,
        )
        key = str(event.order_id)
        headers = envelope_headers(envelope)
        forwarded = forwarded_traceparent()
        if forwarded is not None:
            headers[TRACEPARENT] = forwarded
            payload = self._codec.encode(envelope, event)
        else:
            with tracer.start_as_current_span(f"create {topic}", kind=SpanKind.PRODUCER) as span:
                if span.is_recording():
                    span.set_attributes(
                        {
                            "messaging.system": "kafka",
                            "messaging.operation.type": "create",
                            "messaging.destination.name": topic,
                            "messaging.message.id": headers[EVENT_ID],
                            "messaging.kafka.message.key": key,
                            "shop.event_type": envelope.event_type,
                            "shop.correlation_id": headers[CORRELATION_ID],
                        }
                    )
                inject_into(headers)
                payload = self._codec.encode(envelope, event)
        return OutgoingMessage(envelope.event_id, envelope.event_type, topic, key, payload, headers)
