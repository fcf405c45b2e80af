"""The database cannot hang a service: every service role has a statement, lock and idle-in-transaction
timeout, set by provisioning, and every connection a connect timeout and TCP keepalives. A row lock
held by a client that hung mid-transaction is released by the server, and the consumer that needed the
row waited in place: an outage, nobody's fault, nothing dead-lettered, nothing lost or done twice."""

from __future__ import annotations

import threading
import time
from uuid import uuid4

import psycopg
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from shared.contracts import Envelope, OrderPlaced
from shared.messaging import metrics
from shared.messaging.tables import outbox
from shared.messaging.unit_of_work import UnitOfWork
from shared.provision import ensure_roles_and_schemas, set_role_timeouts
from shared.settings import PROCESSES, libpq_dsn, role_timeouts
from tests.runtime.app import charge, effects
from tests.runtime.support import Database
from tests.waiting import until

_TIMEOUTS = ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout")


def test_provisioning_sets_the_timeouts_on_every_service_role_and_connections_their_options(settings):
    ensure_roles_and_schemas(settings)  # idempotent: the stack's own provisioning, once more
    expected_ms = {
        "statement_timeout": round(settings.database_statement_timeout * 1000),
        "lock_timeout": round(settings.database_lock_timeout * 1000),
        "idle_in_transaction_session_timeout": round(settings.database_idle_in_transaction_timeout * 1000),
    }
    for service in PROCESSES:
        with psycopg.connect(settings.libpq_dsn_of(service)) as conn:
            # pg_settings gives the value in its unit (ms): what the role's sessions actually run with.
            rows = conn.execute(
                "SELECT name, setting::int, source FROM pg_settings WHERE name = ANY(%s)", (list(_TIMEOUTS),)
            ).fetchall()
            assert {name: ms for name, ms, _ in rows} == expected_ms, service
            assert {source for *_, source in rows} == {"user"}, "set on the role, not by the session"
            # The client side: the connection was opened with every connection option.
            parameters = conn.info.get_parameters()
            for name, value in settings.connection_options().items():
                assert parameters.get(name) == value, (service, name)


def test_a_row_lock_held_by_a_dead_transaction_is_released_by_the_timeout(
    consumer_for, database: Database, storefront, unique
):
    # The service roles' own provisioning function, with timeouts short enough for a test.
    with psycopg.connect(database.admin_dsn, autocommit=True) as conn:
        set_role_timeouts(conn, database.role, role_timeouts(statement=3, lock=0.3, idle_in_transaction=5))
    database.engine.dispose()  # role settings apply to sessions opened from now on
    with database.engine.begin() as conn:
        conn.execute(text("CREATE TABLE balances (customer_id text PRIMARY KEY, charges int NOT NULL)"))
        conn.execute(text("INSERT INTO balances VALUES ('C-locked', 0)"))

    def charge_the_balance(event: OrderPlaced, uow: UnitOfWork, envelope: Envelope):
        # The row the blocker holds: this waits for it, up to the role's lock timeout.
        uow.connection.execute(
            text("UPDATE balances SET charges = charges + 1 WHERE customer_id = :c"),
            {"c": event.customer_id},
        )
        return charge(event, uow, envelope)

    group = f"g-{unique}"
    consumer = consumer_for(group, handlers={OrderPlaced: charge_the_balance}, batch_size=5)
    stop = threading.Event()
    thread = threading.Thread(target=consumer.run, args=(stop,))
    thread.start()
    blocker = psycopg.connect(libpq_dsn(make_url(database.url)))
    try:
        storefront.place(customer="C-warm")
        until(lambda: database.count(effects) == 1, what="the consumer at work")

        # A client of the role that takes the row and then hangs, its transaction open, as a process
        # stopped in a debugger or cut off mid-transaction would.
        blocker.execute("SELECT charges FROM balances WHERE customer_id = 'C-locked' FOR UPDATE")
        pid = blocker.info.backend_pid
        retries_before = _retries(group)
        order_id = uuid4()  # one key, so the three are in one partition, in order
        placed = [storefront.place(customer="C-locked", order_id=order_id)[1].event_id for _ in range(3)]

        # Well past the 3 attempts a message of its own would get before its dead letter.
        until(lambda: _retries(group) - retries_before >= 4, timeout=30, what="lock waits retried in place")
        assert _session_state(database, pid) == "idle in transaction", "retried while the lock was held"
        assert database.count(effects, effects.c.customer_id == "C-locked") == 0

        until(lambda: _session_state(database, pid) is None, timeout=30, what="the server ending the blocker")
        until(lambda: database.count(effects) == 4, timeout=30, what="the locked customer's orders handled")
        time.sleep(1)  # a bounded grace for any second delivery to show itself
    finally:
        stop.set()
        thread.join(30)
        blocker.close()

    assert _reasons(group) == {"TransientError"}, "every retry an outage: none counted against a message"
    assert _dead_lettered(group) == 0, "a lock held by another is nobody's fault: no dead letters"
    with database.reader.connect() as conn:
        handled = conn.execute(
            select(effects.c.event_id).where(effects.c.customer_id == "C-locked").order_by(effects.c.seq)
        ).scalars()
        assert list(handled) == placed, "each handled once, in order"
        assert conn.scalar(text("SELECT charges FROM balances WHERE customer_id = 'C-locked'")) == 3
    assert database.count(outbox) == 4, "one event decided per order, none twice"


def _session_state(database: Database, pid: int) -> str | None:
    with psycopg.connect(database.admin_dsn, autocommit=True) as conn:
        row = conn.execute("SELECT state FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
    return row[0] if row else None


def _samples(counter, group: str):
    return [
        s
        for m in counter.collect()
        for s in m.samples
        if s.labels.get("group") == group and s.name.endswith("_total")
    ]


def _retries(group: str) -> float:
    return sum(s.value for s in _samples(metrics.RETRIES, group))


def _reasons(group: str) -> set[str]:
    return {s.labels["reason"] for s in _samples(metrics.RETRIES, group) if s.value}


def _dead_lettered(group: str) -> float:
    return sum(s.value for s in _samples(metrics.DEAD_LETTERED, group))
