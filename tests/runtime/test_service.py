"""A whole service on the runtime: consumer, relay, health and metrics wired by run_service's Service;
and a graceful stop on SIGTERM that commits what it handled."""

from __future__ import annotations

import signal
import threading
import time

import httpx

from shared.messaging.consumer import ConsumerSettings
from shared.messaging.relay import RelaySettings
from shared.messaging.retry import Backoff
from shared.messaging.runtime import Service
from shared.messaging.tables import outbox
from tests.runtime.app import effects, service_definition
from tests.runtime.support import read_all, run_worker
from tests.waiting import until


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_service_consumes_publishes_and_reports_health_and_metrics(
    settings, database, topics, storefront, unique, kafka_config
):
    port = free_port()
    definition = service_definition(
        topics, unique, database_url=database.url, schema=database.role, health_port=port,
        consumer=ConsumerSettings(
            group=f"svc-{unique}",
            topics=[topics.inbound],
            dead_letter_topic=topics.dead_letters,
            backoff=Backoff(0.05, 0.5),
        ),
        relay=RelaySettings(poll_interval=0.5),
    )  # fmt: skip
    service = Service(definition, settings)
    thread = threading.Thread(target=service.run)
    thread.start()
    try:
        placed = [storefront.place(customer=f"C-{i}")[0] for i in range(5)]
        published = read_all(kafka_config, topics.outbound, len(placed))
        assert len(published) == len(placed)
        # The relay marks rows published once Kafka has acknowledged them: just after they are readable.
        until(lambda: database.count(outbox, outbox.c.published_at.is_(None)) == 0, 30, "rows marked")

        health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
        assert health.status_code == 200
        assert health.json()["healthy"] is True and health.json()["relay_alive"] is True
        exposition = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert (
            f'shop_messages_handled_total{{event_type="OrderPlaced",group="svc-{unique}"}} 5.0' in exposition
        )
        # The backlog is counted every few seconds, not at every wake-up of the relay.
        until(
            lambda: (
                f'shop_outbox_backlog{{schema="{database.role}"}} 0.0'
                in httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            ),
            30,
            "an empty backlog reported",
        )
    finally:
        service.stop.set()
        thread.join(60)
    assert not thread.is_alive()
    assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 503


def test_sigterm_finishes_the_batch_commits_and_leaves(
    consumer_for, settings, database, topics, storefront, unique
):
    group = f"g-{unique}"
    for i in range(20):
        storefront.place(customer=f"C-{i}")
    worker = run_worker(settings, database, topics, "consume", "--group", group)
    deadline = time.monotonic() + 60
    while database.count(effects) < 20:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(30) == 0, worker.stdout.read()

    # Everything it handled was committed: a successor in the group gets nothing again.
    successor = consumer_for(group)
    stop = threading.Event()
    got = 0
    deadline = time.monotonic() + 30
    while not successor.assigned:
        assert time.monotonic() < deadline, "successor never joined the group"
        got += successor.poll_once(stop)
    for _ in range(10):
        got += successor.poll_once(stop)
    assert got == 0
