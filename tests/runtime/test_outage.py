"""The database is in trouble for a while: it refuses connections, turns read-only (a failover to a
standby), or a grant is revoked. Every message fails alike, so none is to blame: the consumer retries
in place, dead-letters nothing, loses nothing and keeps each key's order."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable
from uuid import uuid4

import pytest
from psycopg import sql
from sqlalchemy import select

from shared.messaging import metrics
from tests.runtime.app import effects
from tests.runtime.support import Database
from tests.waiting import until


def _cut_connections(database: Database) -> None:
    database.admin(
        sql.SQL("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = {}").format(
            sql.Literal(database.role)
        )
    )


def _role(database: Database, change: str) -> None:
    database.admin(sql.SQL(change).format(role=sql.Identifier(database.role)))


def _refuse_logins(database: Database) -> None:
    _role(database, "ALTER ROLE {role} NOLOGIN")
    _cut_connections(database)


def _turn_read_only(database: Database) -> None:
    # New sessions of the role are read-only, as on a standby; the old ones go, as in a failover.
    _role(database, "ALTER ROLE {role} SET default_transaction_read_only = on")
    _cut_connections(database)


def _revoke_insert(database: Database) -> None:
    _role(database, f"REVOKE INSERT ON {{role}}.{effects.name} FROM {{role}}")


def _restore(database: Database) -> None:
    _role(database, "ALTER ROLE {role} LOGIN")
    _role(database, "ALTER ROLE {role} RESET default_transaction_read_only")
    _role(database, f"GRANT INSERT ON {{role}}.{effects.name} TO {{role}}")


def _total(counter, group: str) -> float:
    return sum(
        s.value
        for m in counter.collect()
        for s in m.samples
        if s.labels.get("group") == group and s.name.endswith("_total")
    )


@pytest.mark.parametrize(
    "trouble",
    [_refuse_logins, _turn_read_only, _revoke_insert],
    ids=["logins-refused", "read-only", "grant-revoked"],
)
def test_database_in_trouble_for_a_while_then_everything_handled_once_in_order(
    consumer_for, database, storefront, unique, trouble: Callable[[Database], None]
):
    group = f"g-{unique}"
    consumer = consumer_for(group, batch_size=5)
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

    retries_before = _total(metrics.RETRIES, group)
    try:
        publish(3)
        until(lambda: database.count(effects) == 9, what="the first events handled")

        trouble(database)
        publish(4)
        # Well past the 3 attempts a message of its own would get before its dead letter.
        until(lambda: _total(metrics.RETRIES, group) - retries_before >= 5, what="retries in place")
        _restore(database)

        until(lambda: database.count(effects) == 21, what="every event handled")
        time.sleep(1)
    finally:
        _restore(database)
        stop.set()
        thread.join(30)

    assert _total(metrics.DEAD_LETTERED, group) == 0, "an outage is nobody's fault: no dead letters"
    assert database.count(effects) == 21, "nothing lost, nothing twice"
    with database.reader.connect() as conn:
        rows = conn.execute(select(effects.c.order_id, effects.c.event_id).order_by(effects.c.seq)).all()
    handled: dict = defaultdict(list)
    for order_id, event_id in rows:
        handled[order_id].append(event_id)
    assert handled == published, "each order's events handled in the order they were published"
