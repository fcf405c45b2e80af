"""The same event twice, or a crash between the database commit and the offset commit: one effect."""

from __future__ import annotations

from shared.messaging.tables import outbox, processed_events
from tests.runtime.app import effects
from tests.runtime.support import drain, run_worker
from tests.runtime.worker import CRASHED


def test_the_same_event_delivered_twice_has_one_effect(consumer_for, database, storefront, unique):
    _, message = storefront.place()
    # A redelivery: the very same record (same event id) on the topic again.
    storefront.send_raw(message.payload, key=message.key, headers=message.headers)

    consumer = consumer_for(f"g-{unique}")
    drain(consumer, until=lambda: database.count(processed_events) == 1, then_polls=10)

    assert database.count(effects) == 1
    assert database.count(outbox) == 1
    assert database.count(processed_events, processed_events.c.event_id == message.event_id) == 1


def test_killed_after_the_database_commit_and_before_the_offset_commit(
    consumer_for, settings, database, topics, storefront, unique
):
    orders = [storefront.place(customer=f"C-{i}")[0] for i in range(10)]
    group = f"g-{unique}"

    worker = run_worker(settings, database, topics, "consume", "--group", group, "--crash", "after-db-commit")
    assert worker.wait(60) == CRASHED
    handled_before = database.count(effects)
    assert handled_before >= 1, "the worker committed a batch before dying"

    # A new instance of the group gets the uncommitted messages again and must not redo them.
    consumer = consumer_for(group)
    drain(consumer, until=lambda: database.count(effects) == len(orders), then_polls=10)

    assert database.count(effects) == len(orders)
    assert database.count(outbox) == len(orders)
    for order in orders:
        assert database.count(effects, effects.c.order_id == order.order_id) == 1
