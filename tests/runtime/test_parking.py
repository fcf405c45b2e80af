"""A row the broker refuses for good is parked, with the later rows of its key; the rest flows. And the
relay's health: from the age of what waits, not from parked rows."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from uuid import uuid4

import httpx
import psycopg
from sqlalchemy import func, select, update

from shared.messaging.headers import EVENT_ID
from shared.messaging.parked import BEHIND, WAIT_FOR_RELAY_LOCK
from shared.messaging.relay import OutboxRelay, RelaySettings
from shared.messaging.runtime import Service
from shared.messaging.tables import outbox
from shared.settings import libpq_dsn
from tests.runtime.app import build_relay, service_definition
from tests.runtime.support import read_all
from tests.waiting import eventually, until

TOO_LARGE = 1_100_000  # over the producer's message.max.bytes (1,000,000) and the broker's (1,048,588)


def write(database, *rows: tuple[str, str, bytes]) -> list[int]:
    """Outbox rows (topic, key, payload) straight into the table, as a handler's transaction would;
    returns their ids in order."""
    with database.engine.begin() as conn:
        return [
            conn.execute(
                outbox.insert()
                .values(
                    event_id=(event_id := uuid4()),
                    event_type="PaymentCompleted",
                    topic=topic,
                    message_key=key,
                    payload=payload,
                    headers={EVENT_ID: str(event_id)},
                )
                .returning(outbox.c.id)
            ).scalar_one()
            for topic, key, payload in rows
        ]


def states(database) -> dict[int, tuple[str, str | None]]:
    """Each row's state and park reason."""
    with database.reader.connect() as conn:
        rows = conn.execute(
            select(outbox.c.id, outbox.c.published_at, outbox.c.parked_at, outbox.c.park_reason)
        ).all()
    return {
        r.id: ("published" if r.published_at else "parked" if r.parked_at else "pending", r.park_reason)
        for r in rows
    }


def drain(relay: OutboxRelay) -> None:
    while relay.relay_once():
        pass


def test_refused_rows_are_parked_with_their_keys_followers_while_other_keys_flow(
    database, topics, kafka_config, unique
):
    missing = f"rt.{unique}.missing"  # never created: the broker does not create topics
    out = topics.outbound
    ids = write(
        database,
        (missing, "A", b"A-1"),
        (out, "B", os.urandom(TOO_LARGE)),  # a row no size check stopped (defence in depth)
        (out, "A", b"A-2"),
        (out, "B", b"B-2"),
        (out, "C", b"C-1"),
        (out, "C", b"C-2"),
    )
    a1, b1, a2, b2, c1, c2 = ids
    relay = build_relay(kafka=kafka_config, engine=database.engine, schema=database.role)
    drain(relay)

    got = states(database)
    assert got[a1][0] == "parked" and got[a1][1].startswith("UNKNOWN_TOPIC_OR_PART"), got[a1]
    assert got[b1][0] == "parked" and got[b1][1].startswith("MSG_SIZE_TOO_LARGE"), got[b1]
    assert got[a2] == ("parked", f"{BEHIND}{a1}")
    assert got[b2] == ("parked", f"{BEHIND}{b1}")
    assert got[c1][0] == got[c2][0] == "published"
    on_topic = read_all(kafka_config, out, 2)
    assert [m.value() for m in on_topic] == [b"C-1", b"C-2"], "only the keys with nothing parked went out"

    # A parked key never publishes past its parked row: what comes later joins it, the rest flows.
    a3, d1 = write(database, (out, "A", b"A-3"), (out, "D", b"D-1"))
    drain(relay)
    got = states(database)
    assert got[a3] == ("parked", f"{BEHIND}{a1}")
    assert got[d1][0] == "published"
    assert [m.value() for m in read_all(kafka_config, out, 3)] == [b"C-1", b"C-2", b"D-1"]
    assert relay.measure().parked == 5 and relay.backlog() == 0


def test_parked_followers_already_in_the_table_are_parked_in_the_same_batch(settings, database, unique):
    """The batch ends at the refused row; its key's later rows beyond the batch are parked with it."""
    missing = f"rt.{unique}.missing"
    first, *later = write(database, (missing, "A", b"A-1"), *[(missing, "A", b"A-n")] * 3)
    relay = OutboxRelay(
        database.engine, database.role, settings.kafka_client("admin"), RelaySettings(batch_size=1)
    )
    assert relay.relay_once() == 1
    got = states(database)
    assert got[first][0] == "parked"
    assert all(got[i] == ("parked", f"{BEHIND}{first}") for i in later), got


def test_a_row_for_a_topic_not_the_services_own_is_parked_and_never_sent(database, topics, kafka_config):
    """Whoever wrote it: the relay sends only to the topics it was given, its service's own."""
    foreign, later, other_key = write(
        database,
        (topics.inbound, "A", b"A-1"),  # a topic that exists, and that this relay does not own
        (topics.outbound, "A", b"A-2"),
        (topics.outbound, "B", b"B-1"),
    )
    relay = OutboxRelay(database.engine, database.role, kafka_config, topic_namespace=topics.outbound)
    assert relay.relay_once() == 3
    got = states(database)
    assert got[foreign][0] == "parked"
    assert got[foreign][1].startswith(f"NOT_OWN_TOPIC: {topics.inbound} is not one of this service's topics")
    assert got[later] == ("parked", f"{BEHIND}{foreign}")
    assert got[other_key][0] == "published"
    assert [m.value() for m in read_all(kafka_config, topics.outbound, 1)] == [b"B-1"]
    assert read_all(kafka_config, topics.inbound, 1, timeout=3) == [], "nothing went to the foreign topic"


def test_clean_up_deletes_discarded_rows_past_retention_never_parked_ones(settings, database, topics, unique):
    published, parked, discarded = write(
        database,
        (topics.outbound, "A", b"1"),
        (topics.outbound, "B", b"2"),
        (topics.outbound, "C", b"3"),
    )
    with database.engine.begin() as conn:
        conn.execute(update(outbox).where(outbox.c.id == published).values(published_at=outbox.c.created_at))
        conn.execute(update(outbox).where(outbox.c.id == parked).values(parked_at=outbox.c.created_at))
        conn.execute(update(outbox).where(outbox.c.id == discarded).values(discarded_at=outbox.c.created_at))
    relay = OutboxRelay(
        database.engine,
        database.role,
        settings.kafka_client("admin"),
        RelaySettings(retention=timedelta(0), handled_retention=timedelta(0)),
    )
    assert relay.clean_up() == (2, 0)
    assert list(states(database)) == [parked]


@contextmanager
def running(relay: OutboxRelay) -> Iterator[None]:
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,))
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(60)


def test_the_relay_turns_unhealthy_when_the_oldest_pending_row_ages(settings, database, topics):
    stopped_broker = _closed_port()
    relay = OutboxRelay(
        database.engine,
        database.role,
        {**settings.kafka_client("admin"), "bootstrap.servers": f"127.0.0.1:{stopped_broker}"},
        RelaySettings(delivery_timeout=1, backlog_every=0.2, unhealthy_after=3, poll_interval=0.2),
    )
    assert relay.health()["relay_healthy"] is True
    with running(relay):
        until(lambda: relay.health()["outbox_pending"] == 0, 10, "an empty outbox measured")
        assert relay.health()["relay_healthy"] is True
        write(database, (topics.outbound, "A", b"A-1"))
        until(lambda: not relay.health()["relay_healthy"], 20, "unhealthy")
        # Measured while failing: the row's own age, not only a measurement going stale.
        until(lambda: (relay.health()["outbox_oldest_pending_seconds"] or 0) >= 3, 20, "the row's age")
        health = relay.health()
        assert health["relay_healthy"] is False and health["outbox_pending"] == 1, health

    # A measurement that goes stale counts as unhealthy too: a relay that stopped measuring says so.
    idle = OutboxRelay(
        database.engine, database.role, settings.kafka_client("admin"), RelaySettings(unhealthy_after=0.5)
    )
    until(lambda: not idle.health()["relay_healthy"], 5, "a stale measurement unhealthy")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when this returns: nothing listens there


def test_a_service_with_parked_rows_stays_healthy_and_says_who_holds_the_relay_lock(
    settings, database, topics, unique, kafka_config
):
    port = _closed_port()
    definition = service_definition(
        topics, unique, database_url=database.url, schema=database.role, health_port=port,
        relay=RelaySettings(poll_interval=0.2, backlog_every=0.2, unhealthy_after=3),
    )  # fmt: skip
    service = Service(definition, settings)
    thread = threading.Thread(target=service.run)
    thread.start()

    def health() -> dict:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).json()

    try:
        until(lambda: _answers(port), 30, "the health server")
        parked, _ = write(database, (f"rt.{unique}.missing", "A", b"A-1"), (topics.outbound, "B", b"B-1"))
        until(
            lambda: health().get("outbox_parked") == 1 and health().get("outbox_pending") == 0, 30, "parked"
        )
        assert [m.value() for m in read_all(kafka_config, topics.outbound, 1)] == [b"B-1"]
        # Older than unhealthy_after, the parked row does not age the relay's health.
        until(lambda: _age(database, parked) > 4, 30, "the parked row older than unhealthy_after")
        assert health()["healthy"] is True
        eventually(lambda: health()["relay_lock"], "held")
        with psycopg.connect(libpq_dsn(database.reader.url)) as other:  # another instance, in a batch
            other.execute(WAIT_FOR_RELAY_LOCK)
            eventually(lambda: health()["relay_lock"], "another instance")
        eventually(lambda: health()["relay_lock"], "held")
        report = health()
        assert report["healthy"] is True and report["outbox_parked"] == 1, report
    finally:
        service.stop.set()
        thread.join(60)


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code in (200, 503)
    except httpx.HTTPError:
        return False


def _age(database, row_id: int) -> float:
    with database.reader.connect() as conn:
        return conn.scalar(
            select(func.extract("epoch", func.now() - outbox.c.created_at)).where(outbox.c.id == row_id)
        )
