"""`make bench-core`: the messaging runtime against this machine's ceiling, on the same messages.

(a) a bare loop: confluent-kafka consume, fastavro decode, one batched psycopg insert per poll, commit;
(b) the runtime: decode and validate through the registry, skip handled event ids, run a trivial handler
    (one event out per event in), record handled ids and outbox rows in one transaction per batch,
    commit offsets after the database; tracing on at the sampling ratio given (default 10%);
(b0) the same with a handler that emits nothing: what the runtime costs apart from producing events;
(c) the outbox relay draining what (b) wrote;
(f1) FastStream, one message at a time, AckPolicy.ACK, one transaction per message;
(f2) FastStream, batch=True, one transaction per batch (faststream_variants.py says how both are built).
Every variant runs with the process's start-up heap out of the garbage collector's reach, as a service's
does (runtime.freeze_start_up_heap). Prints events/s for each, (b)'s CPU per event, the ratio b/a and
the ratios of (b) to (f2) and to (f1). Environment: BENCH_EVENTS (default 50000), BENCH_F1_EVENTS
(default 5000: (f1) handles only the first so many, its rate stays comparable), BENCH_SAMPLING (default
0.1), BENCH_BATCH (default 500), and the usual stack settings.
"""

from __future__ import annotations

import io
import os
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

import fastavro
import psycopg
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from psycopg import sql
from psycopg.conninfo import make_conninfo
from sqlalchemy import create_engine

from shared.access import REGISTRY_PROVISIONING
from shared.contracts import Envelope, Event, OrderPlaced, PaymentCompleted
from shared.messaging.codec import EventCodec, registry_as
from shared.messaging.consumer import ConsumerSettings, EventConsumer
from shared.messaging.kafka_clients import consumer_config, producer_config
from shared.messaging.publishing import MessageFactory
from shared.messaging.relay import OutboxRelay, RelaySettings
from shared.messaging.runtime import freeze_start_up_heap
from shared.messaging.tables import metadata as runtime_metadata
from shared.messaging.tracing import configure_tracing
from shared.messaging.unit_of_work import UnitOfWork
from shared.settings import get_settings, libpq_dsn
from tests.bench import faststream_variants, floor

EVENTS = int(os.environ.get("BENCH_EVENTS", "50000"))
SAMPLING = float(os.environ.get("BENCH_SAMPLING", "0.1"))
BATCH = int(os.environ.get("BENCH_BATCH", "500"))
F1_EVENTS = min(EVENTS, int(os.environ.get("BENCH_F1_EVENTS", "5000")))
PARTITIONS = 6


def trivial_handler(event: OrderPlaced, uow: UnitOfWork, envelope: Envelope) -> list[Event]:
    return [
        PaymentCompleted(
            order_id=event.order_id, payment_id=event.order_id, customer_id=event.customer_id,
            amount=event.total, currency=event.currency,
        )
    ]  # fmt: skip


def silent_handler(event: OrderPlaced, uow: UnitOfWork, envelope: Envelope) -> None:
    return None


def order_placed(i: int) -> OrderPlaced:
    return OrderPlaced.model_validate({
        "order_id": uuid.uuid4(), "customer_id": f"C-{i % 1000}",
        "items": [{"sku": "SKU-1", "quantity": 1, "unit_price": Decimal("9.99")}],
        "total": Decimal("9.99"), "currency": "EUR",
        "shipping_address": {"recipient": "Ada", "street": "Main St 1", "city": "Berlin",
                             "postal_code": "10115", "country": "DE"},
    })  # fmt: skip


def routes(topic: str):
    """OrderPlaced on the bench's topic (the consumer refuses it anywhere else as misrouted), what the
    handler emits on its .out topic."""
    return lambda event_type: topic if event_type is OrderPlaced else f"{topic}.out"


def produce_orders(kafka: Mapping[str, str], factory: MessageFactory, topic: str) -> None:
    producer = Producer({**producer_config(kafka), "linger.ms": 20, "batch.num.messages": 10000})
    for i in range(EVENTS):
        event = order_placed(i)
        message = factory.message(event, event.order_id, None)
        while True:
            try:
                producer.produce(topic, message.payload, message.key, headers=list(message.headers.items()))
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    assert producer.flush(60) == 0


@dataclass(frozen=True)
class Run:
    events: int
    seconds: float
    cpu_seconds: float  # this process's CPU, all threads (librdkafka's and the span exporter's too)

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    @property
    def cpu_per_event(self) -> float:
        return self.cpu_seconds / self.events


class _Clock:
    """Wall and CPU time from the first batch that arrived (joining the group is not counted)."""

    def __init__(self) -> None:
        self._wall: float | None = None
        self._cpu = 0.0

    def start(self) -> None:
        if self._wall is None:
            self._wall, self._cpu = time.perf_counter(), time.process_time()

    def stop(self, events: int) -> Run:
        assert self._wall is not None, "no message arrived"
        return Run(events, time.perf_counter() - self._wall, time.process_time() - self._cpu)


def bare_loop(kafka: Mapping[str, str], topic: str, dsn: str, parsed_schema: object) -> Run:
    consumer = Consumer(consumer_config(kafka, f"bench-bare-{uuid.uuid4()}"))
    consumer.subscribe([topic])
    seen = 0
    clock = _Clock()
    with psycopg.connect(dsn) as conn:
        while seen < EVENTS:
            msgs = consumer.consume(BATCH, 1.0)
            if not msgs:
                continue
            clock.start()
            rows = []
            last: dict[int, int] = {}
            for msg in msgs:
                record = fastavro.schemaless_reader(io.BytesIO(msg.value()[5:]), parsed_schema, None)
                rows.append((record["envelope"]["event_id"], record["order_id"]))
                last[msg.partition()] = msg.offset()
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO bare_rows (event_id, order_id) VALUES (%s, %s)", rows)
            conn.commit()
            consumer.commit(
                offsets=[TopicPartition(topic, p, o + 1) for p, o in last.items()], asynchronous=True
            )
            seen += len(msgs)
    run = clock.stop(seen)
    consumer.close()
    return run


def runtime_loop(
    kafka: Mapping[str, str],
    topic: str,
    engine,
    codec: EventCodec,
    dead_letters: str,
    handler=trivial_handler,
) -> Run:
    group = f"bench-runtime-{uuid.uuid4()}"
    consumer = EventConsumer(
        settings=ConsumerSettings(
            group=group, topics=[topic], dead_letter_topic=dead_letters, batch_size=BATCH
        ),
        consumer=Consumer(consumer_config(kafka, group)),
        dead_letter_producer=Producer(producer_config(kafka)),
        engine=engine,
        codec=codec,
        factory=MessageFactory(codec, "bench", routes(topic)),
        handlers={OrderPlaced: handler},
    )
    stop = threading.Event()
    seen = 0
    clock = _Clock()
    while seen < EVENTS:
        clock.start()  # the first poll joins the group: a handful of ms against seconds of work
        seen += consumer.poll_once(stop)
    run = clock.stop(seen)
    consumer._close()
    return run


def report(label: str, run: Run) -> None:
    print(f"{label:52} {run.rate:8,.0f} events/s {1e6 * run.cpu_per_event:7.1f} µs CPU/event", flush=True)


def report_floor(codec: EventCodec, topic: str, a: Run) -> None:
    """The steps (b) must add to (a)'s work for each event, timed alone, and the b/a they allow."""
    sample = MessageFactory(codec, "bench", lambda _: topic).message(order_placed(0), uuid.uuid4(), None)
    f = floor.measure(codec, sample.payload, trivial_handler)
    spans_b, spans_b0 = 2 * SAMPLING * f.span, SAMPLING * f.span  # b: consumer + producer span
    print(
        f"steps the runtime must add, timed alone, µs/event: validate {1e6 * f.validate:.1f}, "
        f"emit one event {1e6 * f.emit:.1f}, spans at {SAMPLING:.0%} {1e6 * spans_b:.1f} "
        f"({1e6 * f.span:.0f} per sampled span)"
    )
    a_cpu = a.cpu_per_event
    best_b = a_cpu / (a_cpu + f.validate + f.emit + spans_b)
    best_b0 = a_cpu / (a_cpu + f.validate + spans_b0)
    print(f"so, against (a)'s {1e6 * a_cpu:.1f} µs CPU/event, a runtime costing nothing else: "
          f"b/a <= {best_b:.2f}, b0/a <= {best_b0:.2f}")  # fmt: skip


def faststream(
    kafka: Mapping[str, str], topic: str, url, codec: EventCodec, provider, schemas: dict[str, str]
):
    """(f1) and (f2) on the same topic, each in its own consumer group and its own copy of our tables."""
    factory = MessageFactory(codec, "bench", routes(topic))
    common = {"kafka": kafka, "topic": topic, "codec": codec, "factory": factory,
              "provider": provider, "handler": trivial_handler}  # fmt: skip

    def dsn(variant: str) -> str:
        return make_conninfo(libpq_dsn(url), options=f"-c search_path={schemas[variant]}")

    f1 = faststream_variants.per_message(
        **common, dsn=dsn("f1"), events=F1_EVENTS, clock=_Clock(), group=f"bench-fs1-{uuid.uuid4()}"
    )
    report("(f1) FastStream per message, AckPolicy.ACK", f1)
    f2 = faststream_variants.batched(
        **common, dsn=dsn("f2"), events=EVENTS, clock=_Clock(), group=f"bench-fs2-{uuid.uuid4()}",
        batch_size=BATCH,
    )  # fmt: skip
    report(f"(f2) FastStream batch=True, one transaction per {BATCH}", f2)
    if F1_EVENTS < EVENTS:
        print(f"  (f1) on the first {F1_EVENTS:,} of the {EVENTS:,} events only (BENCH_F1_EVENTS), to keep "
              "the run short: its rate compares, its count is smaller")  # fmt: skip
    return f1, f2


def main() -> None:
    settings = get_settings()
    client = settings.kafka_client("admin")  # the bench's own topics and groups: the super user
    tag = uuid.uuid4().hex[:8]
    topic, out_topic, dlt = f"bench.{tag}", f"bench.{tag}.out", f"bench.{tag}.dlt"
    role = f"bench_{tag}"
    fs_schemas = {"f1": f"{role}_f1", "f2": f"{role}_f2"}  # FastStream's own copies of our two tables
    admin_dsn = libpq_dsn(settings.admin_database_url().set(database="shop"))
    url = settings.database_url("order").set(username=role, password=f"pw-{tag}")
    kafka = AdminClient(client)
    for f in kafka.create_topics([NewTopic(topic, PARTITIONS, 1), NewTopic(out_topic, PARTITIONS, 1),
                                  NewTopic(dlt, 1, 1)]).values():  # fmt: skip
        f.result(30)
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(f"pw-{tag}"))
        )
        conn.execute(sql.SQL("GRANT CONNECT ON DATABASE shop TO {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("CREATE SCHEMA {0} AUTHORIZATION {0}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("ALTER ROLE {0} SET search_path = {0}").format(sql.Identifier(role)))
        for schema in fs_schemas.values():
            owned = sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}")
            conn.execute(owned.format(sql.Identifier(schema), sql.Identifier(role)))
    engine = create_engine(url.render_as_string(hide_password=False), pool_size=2)
    runtime_metadata.create_all(engine)
    for schema in fs_schemas.values():
        with engine.begin() as conn:
            conn.exec_driver_sql(f'SET LOCAL search_path = "{schema}"')
            runtime_metadata.create_all(conn)
    with psycopg.connect(libpq_dsn(url)) as conn:
        conn.execute("CREATE TABLE bare_rows (event_id uuid NOT NULL, order_id uuid NOT NULL)")
        conn.commit()

    provider = configure_tracing("bench-core", settings.otel_exporter_otlp_endpoint, SAMPLING)
    try:
        codec = EventCodec(registry_as(settings, REGISTRY_PROVISIONING))
        codec.register([OrderPlaced, PaymentCompleted])
        print(f"producing {EVENTS} OrderPlaced to {topic} ({PARTITIONS} partitions)...", flush=True)
        t = time.perf_counter()
        produce_orders(client, MessageFactory(codec, "bench", lambda _: topic), topic)
        print(f"  produced in {time.perf_counter() - t:.1f}s", flush=True)
        # As a service process does once it is built (runtime.run_service). A setting of the process,
        # not of a framework: every variant runs with it, FastStream's too.
        freeze_start_up_heap()

        a = bare_loop(client, topic, libpq_dsn(url), codec.registered(OrderPlaced).parsed)
        report("(a) bare loop: consume, fastavro decode, batched insert", a)
        b = runtime_loop(client, topic, engine, codec, dlt)
        report(f"(b) runtime: idempotent, outbox, tracing {SAMPLING:.0%}", b)
        b0 = runtime_loop(client, topic, engine, codec, dlt, handler=silent_handler)
        report("(b0) runtime, handler emitting nothing", b0)
        relay = OutboxRelay(engine, role, client, RelaySettings(batch_size=1000))
        clock = _Clock()
        clock.start()
        published = 0
        while (n := relay.relay_once()) > 0:
            published += n
        report(f"(c) outbox relay, {published} rows", clock.stop(published))
        f1, f2 = faststream(client, topic, url, codec, provider, fs_schemas)
        # b/a is the bare loop's ceiling, for reference (its 0.7 goal was retired for (b)'s CPU).
        print(f"(b) CPU per event: {b.cpu_per_event * 1e6:.1f} µs (goal <= 60)")
        print(f"ratio b/a: {b.rate / a.rate:.2f}; b0/a: {b0.rate / a.rate:.2f}")
        print(f"ratio runtime/faststream-batch: {b.rate / f2.rate:.2f}")
        print(f"ratio runtime/faststream-per-message: {b.rate / f1.rate:.2f}")
        report_floor(codec, topic, a)
    finally:
        provider.shutdown()
        engine.dispose()
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            for schema in fs_schemas.values():
                conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
        for f in kafka.delete_topics([topic, out_topic, dlt]).values():
            f.result(30)


if __name__ == "__main__":
    main()
