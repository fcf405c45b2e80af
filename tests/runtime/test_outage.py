"""The database goes away for a while: the consumer retries in place, loses nothing, keeps key order."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from uuid import uuid4

from psycopg import sql
from sqlalchemy import select

from shared.messaging import metrics
from tests.runtime.app import effects
from tests.waiting import until


def test_database_unavailable_for_a_while_then_everything_handled_once_in_order(
    consumer_for, database, storefront, unique
):
    group = f"g-{unique}"
    consumer = consumer_for(
        group,
        batch_size=5,
    )
    stop = threading.Event()
    thread = threading.Thread(target=consumer.run, args=(stop,))
    thread.start()
    orders = [uuid4() for _ in range(3)]
    published: dict = defaultdict(list)

    def publish(rounds: int) -> None:
        for _ in range(rounds):
            for order_id in orders:
                _, message = storefront.place(order_id=order_id)
                published[order_id].append(message.event_id)

    def retries() -> float:
        return sum(
            s.value
            for m in metrics.RETRIES.collect()
            for s in m.samples
            if s.labels.get("group") == group and s.name.endswith("_total")
        )

    retries_before = retries()
    try:
        publish(3)
        until(lambda: database.count(effects) == 9)

        # The service's role can no longer log in, and its open connections are cut.
        database.admin(sql.SQL("ALTER ROLE {} NOLOGIN").format(sql.Identifier(database.role)))
        database.admin(
            sql.SQL("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = {}").format(
                sql.Literal(database.role)
            )
        )
        publish(4)
        until(lambda: retries() - retries_before >= 2)  # the outage met, and retried in place
        database.admin(sql.SQL("ALTER ROLE {} LOGIN").format(sql.Identifier(database.role)))

        until(lambda: database.count(effects) == 21)
        time.sleep(1)
    finally:
        stop.set()
        thread.join(30)

    assert database.count(effects) == 21, "nothing lost, nothing twice"
    with database.reader.connect() as conn:
        rows = conn.execute(select(effects.c.order_id, effects.c.event_id).order_by(effects.c.seq)).all()
    handled: dict = defaultdict(list)
    for order_id, event_id in rows:
        handled[order_id].append(event_id)
    assert handled == published, "each order's events handled in the order they were published"
