"""Fixtures and helpers for the runtime tests: a database role, a schema and topics of their own."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from uuid import UUID, uuid4

import psycopg
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from psycopg import sql
from sqlalchemy import Engine, create_engine, func, select

from shared.contracts import OrderPlaced
from shared.messaging.codec import EventCodec
from shared.messaging.consumer import EventConsumer
from shared.messaging.kafka_clients import producer_config
from shared.messaging.publishing import MessageFactory
from shared.messaging.tables import metadata as runtime_metadata
from shared.settings import libpq_dsn
from tests.runtime.app import TestTopics, build_consumer, engine_for, make_codec, test_metadata

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _needs_the_stack(stack):
    """Every test here talks to the real stack."""


@dataclass
class Database:
    role: str
    url: str  # SQLAlchemy URL of the role that owns the schema
    engine: Engine  # the runtime's, as the services configure theirs
    admin_dsn: str
    # The test's own reads: pinged first, so that a connection an outage test cut is replaced, not raised.
    reader: Engine

    def count(self, table, *where) -> int:
        with self.reader.connect() as conn:
            return conn.scalar(select(func.count()).select_from(table).where(*where)) or 0

    def admin(self, statement: sql.Composable | str) -> None:
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(statement)


@pytest.fixture
def database(settings, unique) -> Iterator[Database]:
    """A login role owning a schema of the same name, with the runtime's tables and the test app's."""
    role = f"rt_{unique}"
    admin_dsn = libpq_dsn(settings.admin_database_url().set(database="shop"))
    url = settings.database_url("order").set(username=role, password=f"pw-{unique}")
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(f"pw-{unique}")
            )
        )
        conn.execute(sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE shop TO {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("CREATE SCHEMA {0} AUTHORIZATION {0}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("ALTER ROLE {0} SET search_path = {0}").format(sql.Identifier(role)))
    engine = engine_for(url.render_as_string(hide_password=False))
    runtime_metadata.create_all(engine)
    test_metadata.create_all(engine)
    reader = create_engine(url, pool_size=1, pool_pre_ping=True)
    db = Database(role, url.render_as_string(hide_password=False), engine, admin_dsn, reader)
    yield db
    engine.dispose()
    reader.dispose()
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER ROLE {} LOGIN").format(sql.Identifier(role)))
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(role)))
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


@pytest.fixture
def topics(kafka_config, unique) -> Iterator[TestTopics]:
    names = TestTopics(f"rt.{unique}.in", f"rt.{unique}.out", f"rt.{unique}.dlt")
    admin = AdminClient(kafka_config)
    new = [NewTopic(names.inbound, 3, 1), NewTopic(names.outbound, 3, 1), NewTopic(names.dead_letters, 1, 1)]
    for future in admin.create_topics(new).values():
        future.result(30)
    yield names
    for future in admin.delete_topics([t.topic for t in new]).values():
        future.result(30)


@pytest.fixture
def consumer_for(kafka_config, codec, database, topics) -> Callable[..., EventConsumer]:
    """The test app's consumer on this test's topics and schema: give a group, and what else differs."""

    def build(group: str, **options: object) -> EventConsumer:
        return build_consumer(
            kafka=kafka_config,
            codec=codec,
            engine=database.engine,
            topics=topics,
            group=group,
            **options,
        )

    return build


@pytest.fixture(scope="session")
def codec(settings) -> EventCodec:
    return make_codec(settings)


@dataclass
class Storefront:
    """Publishes OrderPlaced to the test's inbound topic, as the real storefront would."""

    factory: MessageFactory
    producer: Producer
    topic: str

    def place(self, customer: str = "C-1", order_id: UUID | None = None, correlation_id: UUID | None = None):
        event = order_placed(customer, order_id)
        message = self.factory.message(event, correlation_id or uuid4(), None)
        self.send_raw(message.payload, key=message.key, headers=message.headers)
        return event, message

    def send_raw(self, value: bytes | None, key: str = "k", headers: dict | list | None = None) -> None:
        errors = []
        self.producer.produce(
            self.topic,
            value=value,
            key=key,
            headers=list(headers.items()) if isinstance(headers, dict) else list(headers or []),
            on_delivery=lambda err, _m: errors.append(err) if err else None,
        )
        assert self.producer.flush(30) == 0 and not errors, errors


@pytest.fixture
def storefront(codec, topics, kafka_config) -> Storefront:
    return Storefront(
        MessageFactory(codec, "storefront", topics.topic_for),
        Producer(producer_config(kafka_config)),
        topics.inbound,
    )


def order_placed(customer: str = "C-1", order_id: UUID | None = None) -> OrderPlaced:
    return OrderPlaced.model_validate(
        {
            "order_id": order_id or uuid4(),
            "customer_id": customer,
            "items": [{"sku": "SKU-1", "quantity": 2, "unit_price": Decimal("5.25")}],
            "total": Decimal("10.50"),
            "currency": "EUR",
            "shipping_address": {
                "recipient": "Ada",
                "street": "Main St 1",
                "city": "Berlin",
                "postal_code": "10115",
                "country": "DE",
            },
        }
    )


def drain(
    consumer: EventConsumer, until: Callable[[], bool], timeout: float = 60, then_polls: int = 5
) -> None:
    """Run the consumer's loop until the condition holds, then a few polls more to let any further
    (duplicate) delivery show itself."""
    stop = threading.Event()
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, "condition not reached in time"
        consumer.poll_once(stop)
    for _ in range(then_polls):
        consumer.poll_once(stop)


def read_all(kafka_config, topic: str, expected: int, timeout: float = 30) -> list[Message]:
    """Every message of a topic, from the beginning, once at least `expected` are there. Its partitions
    are assigned, not subscribed to: a reader that joins no group has no group to leave, so closing it
    waits on no coordinator (librdkafka's close can hang there, confluent-kafka-python#1667)."""
    consumer = Consumer({**kafka_config, "group.id": "unused", "enable.auto.commit": False})
    out: list[Message] = []
    deadline = time.monotonic() + timeout
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        while len(out) < expected and time.monotonic() < deadline:
            for msg in consumer.consume(100, 0.5):
                if msg.error() is None:
                    out.append(msg)
        # Anything beyond what was expected (duplicates) shows up within a short grace period.
        for msg in consumer.consume(100, 1.0):
            if msg.error() is None:
                out.append(msg)
    finally:
        consumer.close()
    return out


def run_worker(settings, database: Database, topics: TestTopics, *args: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.runtime.worker",
            *args,
            "--db-url",
            database.url,
            "--schema",
            database.role,
            "--topics",
            topics.inbound,
            topics.outbound,
            topics.dead_letters,
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.stdout.readline().strip() == "ready"
    return proc
