"""Publishing straight to Kafka, for producers without a database of their own (the storefront, the CLI).

Services never use this: what a service decides goes through its outbox. Each publish waits for the
broker's acknowledgement and says where the event landed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from uuid import UUID, uuid4

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from shared.contracts import Event
from shared.messaging.codec import EventCodec, registry_as
from shared.messaging.kafka_clients import produce, producer_config
from shared.messaging.publishing import MessageFactory, OutgoingMessage
from shared.settings import Settings
from shared.topics import STOREFRONT


class PublishError(Exception):
    pass


@dataclass(frozen=True)
class Published:
    message: OutgoingMessage
    partition: int
    offset: int


class EventPublisher:
    def __init__(
        self, settings: Settings, source: str | None, event_types: Iterable[type[Event]], principal: str
    ) -> None:
        """`principal`: who publishes, for the broker and the registry (shared.access). The storefront
        registers its own schema (the registry's roles let it); anyone else looks schemas up, which
        provisioning registered."""
        if principal == STOREFRONT:
            self.codec = EventCodec(registry_as(settings, STOREFRONT))
            self.codec.register(event_types)
        else:
            self.codec = EventCodec(registry_as(settings))
            self.codec.look_up(event_types)
        self._factory = MessageFactory(self.codec, source)
        self._producer = Producer(producer_config(settings.kafka_client(principal)))
        self._failures: list[KafkaError] = []
        self._connect({self._factory.topic_of(t) for t in event_types})

    def _connect(self, topics: set[str], timeout: float = 10) -> None:
        """Log in and learn where the topics live before the first event, not during it: a cold
        producer holds its first events half a second while it connects (TLS, SCRAM) and asks."""
        for topic in sorted(topics):
            try:
                self._producer.list_topics(topic, timeout=timeout)
            except KafkaException as exc:
                raise PublishError(f"cannot reach the broker for {topic}: {exc.args[0].str()}") from exc

    def check_size(self, event: Event) -> None:
        """Raises OversizedEvent for an event no broker would take: check a batch before sending any."""
        self._factory.check_size(event)

    def send(self, event: Event, correlation_id: UUID | None = None) -> OutgoingMessage:
        """Publish without waiting (for a stream of events); `flush` then says whether all landed."""
        message = self._factory.message(event, correlation_id or uuid4(), None)
        produce(
            self._producer,
            message.topic,
            value=message.payload,
            key=message.key,
            headers=list(message.headers.items()),
            on_delivery=self._delivered,
        )
        self._producer.poll(0)
        return message

    def _delivered(self, err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            self._failures.append(err)

    def flush(self, timeout: float = 30) -> None:
        remaining = self._producer.flush(timeout)
        if remaining or self._failures:
            first = self._failures[0].str() if self._failures else f"{remaining} not acknowledged"
            raise PublishError(f"{len(self._failures) + remaining} events not published: {first}")

    def publish(
        self,
        event: Event,
        correlation_id: UUID | None = None,
        causation_id: UUID | None = None,
        timeout: float = 30,
    ) -> Published:
        message = self._factory.message(event, correlation_id or uuid4(), causation_id)
        outcome: list[tuple[KafkaError | None, Message]] = []
        self._producer.produce(
            message.topic,
            value=message.payload,
            key=message.key,
            headers=list(message.headers.items()),
            on_delivery=lambda err, msg: outcome.append((err, msg)),
        )
        self._producer.flush(timeout)
        if not outcome:
            raise PublishError(f"no acknowledgement from the broker within {timeout:.0f}s")
        err, msg = outcome[0]
        if err is not None:
            raise PublishError(f"the broker refused the event: {err.str()}")
        return Published(message, msg.partition() or 0, msg.offset() or 0)
