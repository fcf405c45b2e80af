"""A small application on the runtime, for its tests: OrderPlaced in, PaymentCompleted out.

Used in-process by the tests and as a subprocess (worker.py) where a test kills it for real.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from uuid import NAMESPACE_URL, uuid5

from confluent_kafka import Consumer, Producer
from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Identity,
    MetaData,
    Table,
    Text,
    Uuid,
    insert,
)

from shared.access import REGISTRY_PROVISIONING
from shared.contracts import Envelope, Event, OrderPlaced, PaymentCompleted
from shared.messaging.codec import EventCodec, registry_as
from shared.messaging.consumer import ConsumerSettings, EventConsumer, Hooks
from shared.messaging.errors import HandlerRejected
from shared.messaging.kafka_clients import consumer_config, producer_config
from shared.messaging.outages import service_engine
from shared.messaging.publishing import MessageFactory
from shared.messaging.relay import OutboxRelay, RelaySettings
from shared.messaging.retry import Backoff
from shared.messaging.runtime import ServiceDefinition
from shared.messaging.unit_of_work import UnitOfWork
from shared.settings import Settings

test_metadata = MetaData()

# What the test handler did, in the order it did it.
effects = Table(
    "effects",
    test_metadata,
    Column("seq", BigInteger, Identity(always=True), primary_key=True),
    Column("event_id", Uuid, nullable=False),
    Column("order_id", Uuid, nullable=False),
    Column("customer_id", Text, nullable=False),
    Column("event_type", Text, nullable=False),
)


# Customers the test handler refuses; a test may change its mind (then replay the dead letter).
REJECTED_CUSTOMERS = {"C-reject"}


def charge(event: OrderPlaced, uow: UnitOfWork, envelope: Envelope) -> list[Event]:
    if event.customer_id in REJECTED_CUSTOMERS:
        raise HandlerRejected(f"the test handler refuses customer {event.customer_id!r}")
    if event.customer_id == "C-flaky":
        raise RuntimeError("the test handler always fails for customer 'C-flaky'")
    uow.connection.execute(
        insert(effects).values(
            event_id=envelope.event_id,
            order_id=event.order_id,
            customer_id=event.customer_id,
            event_type=envelope.event_type,
        )
    )
    return [
        PaymentCompleted(
            order_id=event.order_id,
            payment_id=uuid5(NAMESPACE_URL, f"payment:{event.order_id}"),
            customer_id=event.customer_id,
            amount=event.total,
            currency=event.currency,
        )
    ]


def record_payment(event: PaymentCompleted, uow: UnitOfWork, envelope: Envelope) -> None:
    uow.connection.execute(
        insert(effects).values(
            event_id=envelope.event_id,
            order_id=event.order_id,
            customer_id=event.customer_id,
            event_type=envelope.event_type,
        )
    )


@dataclass(frozen=True)
class TestTopics:
    inbound: str
    outbound: str
    dead_letters: str

    def topic_for(self, event_type: type[Event]) -> str:
        return self.inbound if event_type is OrderPlaced else self.outbound


def engine_for(url: str) -> Engine:
    return service_engine(url, pool_size=2)  # as the runtime's


def make_codec(settings: Settings) -> EventCodec:
    codec = EventCodec(registry_as(settings, REGISTRY_PROVISIONING))  # registers: a writer
    codec.register([OrderPlaced, PaymentCompleted])
    return codec


def build_consumer(
    *,
    kafka: Mapping[str, str],
    codec: EventCodec,
    engine: Engine,
    topics: TestTopics,
    group: str,
    handlers: dict[type[Event], Callable] | None = None,
    hooks: Hooks | None = None,
    max_attempts: int = 3,
    batch_size: int = 100,
    topic_owners: Mapping[str, str] | None = None,
    replayable_topics: frozenset[str] | None = None,
) -> EventConsumer:
    handlers = handlers or {OrderPlaced: charge}
    subscribed = sorted({topics.topic_for(t) for t in handlers})
    return EventConsumer(
        settings=ConsumerSettings(
            group=group,
            topics=subscribed,
            dead_letter_topic=topics.dead_letters,
            batch_size=batch_size,
            poll_timeout=0.2,
            max_attempts=max_attempts,
            backoff=Backoff(initial=0.05, maximum=0.5),
            topic_owners=topic_owners,
            replayable_topics=replayable_topics,
        ),
        consumer=Consumer(consumer_config(kafka, group)),
        dead_letter_producer=Producer(producer_config(kafka)),
        engine=engine,
        codec=codec,
        factory=MessageFactory(codec, "runtime-tests", topics.topic_for),
        handlers=handlers,
        hooks=hooks,
    )


def build_relay(
    *, kafka: Mapping[str, str], engine: Engine, schema: str, listen_dsn: str | None = None
) -> OutboxRelay:
    return OutboxRelay(
        engine,
        schema,
        kafka,
        RelaySettings(batch_size=50, poll_interval=0.2),
        listen_dsn=listen_dsn,
    )


def service_definition(
    topics: TestTopics, unique: str, *, database_url: str, schema: str, health_port: int, **overrides: object
) -> ServiceDefinition:
    """A whole test service on this test's topics and schema (the runtime's Service runs it): charges
    each OrderPlaced, as the admin (a test service is none of the principals); `overrides` replace
    any field."""
    fields: dict[str, object] = {
        "name": f"svc-{unique}",
        "kafka_principal": "admin",
        "handlers": {OrderPlaced: charge},
        "publishes": [PaymentCompleted],
        "database_url": database_url,
        "schema": schema,
        "health_port": health_port,
        "topic_for": topics.topic_for,
        "topic_namespace": f"rt.{unique}.",
        "consumer": ConsumerSettings(
            group=f"svc-{unique}", topics=[topics.inbound], dead_letter_topic=topics.dead_letters
        ),
    }
    return ServiceDefinition(**{**fields, **overrides})  # type: ignore[arg-type]
