"""The outbox relay: in order per key, once per row across instances, woken by NOTIFY, crash-safe."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from datetime import timedelta
from uuid import uuid4

from sqlalchemy import update

from shared.contracts import PaymentCompleted
from shared.messaging.headers import EVENT_ID, as_dict
from shared.messaging.outbox import add_to_outbox
from shared.messaging.publishing import MessageFactory
from shared.messaging.relay import OutboxRelay, RelaySettings
from shared.messaging.tables import outbox, processed_events
from tests.runtime.app import build_relay, effects, record_payment
from tests.runtime.support import drain, read_all, run_worker
from tests.runtime.worker import CRASHED


def decide(database, codec, topics, orders: int, per_order: int) -> list[tuple[str, str]]:
    """Write outbox rows as handlers would: (key, event id) in decision order."""
    factory = MessageFactory(codec, "payment", topics.topic_for)
    order_ids = [uuid4() for _ in range(orders)]
    messages = [
        factory.message(
            PaymentCompleted(
                order_id=o, payment_id=uuid4(), customer_id="C-1", amount="1.00", currency="EUR"
            ),
            correlation_id=o,
            causation_id=None,
        )
        for _ in range(per_order)
        for o in order_ids
    ]
    with database.engine.begin() as conn:
        add_to_outbox(conn, messages)
    return [(m.key, str(m.event_id)) for m in messages]


def by_key(pairs):
    out = defaultdict(list)
    for key, event_id in pairs:
        out[key].append(event_id)
    return out


def test_two_relays_publish_every_row_once_and_in_order_per_key(database, topics, codec, kafka_config):
    decided = decide(database, codec, topics, orders=5, per_order=60)
    stop = threading.Event()
    relays = [build_relay(kafka=kafka_config, engine=database.engine, schema=database.role) for _ in range(2)]
    threads = [threading.Thread(target=r.run, args=(stop,)) for r in relays]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 60
        while database.count(outbox, outbox.c.published_at.is_(None)):
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        stop.set()
        for t in threads:
            t.join(30)

    published = read_all(kafka_config, topics.outbound, len(decided))
    got = [(m.key().decode(), as_dict(m.headers())[EVENT_ID]) for m in published]
    assert len(got) == len(decided), "no row published twice, none lost"
    # Partitions keep order per key: each key's events arrive in the order they were decided.
    assert by_key(got) == by_key(decided)


def test_a_relay_killed_after_publishing_and_before_marking_causes_duplicates_but_one_effect(
    consumer_for, settings, database, topics, codec, kafka_config, unique
):
    decided = decide(database, codec, topics, orders=4, per_order=10)
    worker = run_worker(settings, database, topics, "relay", "--crash", "after-publish")
    assert worker.wait(60) == CRASHED
    assert database.count(outbox, outbox.c.published_at.is_(None)) == len(decided), "nothing was marked"

    relay = build_relay(kafka=kafka_config, engine=database.engine, schema=database.role)
    while relay.relay_once():
        pass
    assert database.count(outbox, outbox.c.published_at.is_(None)) == 0
    on_topic = read_all(kafka_config, topics.outbound, len(decided) + 1)
    assert len(on_topic) > len(decided), "the crashed relay's batch went out twice"

    downstream = consumer_for(
        f"down-{unique}",
        handlers={PaymentCompleted: record_payment},
    )
    drain(downstream, until=lambda: database.count(effects) >= len(decided), then_polls=10)
    assert database.count(effects) == len(decided)
    assert {str(e) for e in _effect_ids(database)} == {event_id for _, event_id in decided}


def _effect_ids(database):
    with database.engine.connect() as conn:
        return list(conn.scalars(effects.select().with_only_columns(effects.c.event_id)))


def test_the_relay_wakes_on_notify_rather_than_waiting_for_its_poll(database, topics, codec, kafka_config):
    relay = OutboxRelay(
        database.engine,
        database.role,
        kafka_config,
        RelaySettings(poll_interval=120),
        listen_dsn=_libpq(database.url),
    )
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,))
    thread.start()
    try:
        time.sleep(1.0)  # the relay drained the (empty) outbox and is now waiting on LISTEN
        decide(database, codec, topics, orders=1, per_order=1)
        deadline = time.monotonic() + 20  # far less than the 120 s poll: only NOTIFY can wake it
        while database.count(outbox, outbox.c.published_at.is_(None)):
            assert time.monotonic() < deadline, "relay not woken by NOTIFY"
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(30)


def _libpq(url: str) -> str:
    from sqlalchemy.engine import make_url

    from shared.settings import libpq_dsn

    return libpq_dsn(make_url(url))


def test_published_rows_and_old_handled_records_are_cleaned_up(settings, database, topics, codec):
    decide(database, codec, topics, orders=2, per_order=3)
    with database.engine.begin() as conn:
        conn.execute(update(outbox).where(outbox.c.id <= 4).values(published_at=outbox.c.created_at))
        conn.execute(processed_events.insert().values(consumer_group="g", event_id=uuid4(), event_type="X"))
    relay = OutboxRelay(
        database.engine,
        database.role,
        settings.kafka_client("admin"),
        RelaySettings(retention=timedelta(0), handled_retention=timedelta(0), cleanup_chunk=3),
    )
    assert relay.clean_up() == (4, 1), "in chunks of 3: 3, then 1"
    assert database.count(outbox) == 2, "unpublished rows stay, whatever their age"
    assert relay.backlog() == 2
