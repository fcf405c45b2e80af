"""Driving the running system from outside, as a storefront and an operator would."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import psycopg
from confluent_kafka import Consumer, TopicPartition
from psycopg.rows import dict_row

from shared.contracts import OrderPlaced
from shared.messaging.headers import as_dict
from shared.messaging.publisher import EventPublisher, Published
from shared.settings import HEALTH_PORTS, PROCESSES, SERVICES, Settings, libpq_dsn
from shared.topics import OWNERS, dead_letter_topic, events_topic

REPO = Path(__file__).resolve().parents[2]
TERMINAL = ("OrderCompleted", "OrderCancelled")


def healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def health(port: int) -> dict[str, Any]:
    return httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).json()


def metric(port: int, name: str, labels: dict[str, str]) -> float:
    """One sample of a service's /metrics (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text.splitlines():
        if line.startswith(f"{name}{{{wanted}}} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


class ServiceProcess:
    """A service instance started by the tests, logging to a file."""

    def __init__(self, service: str, port: int, log_dir: Path) -> None:
        self.service, self.port = service, port
        self.log = log_dir / f"{service}-{port}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", f"services.{service}"],
            cwd=REPO,
            env={**os.environ, "HEALTH_PORT": str(port), "PYTHONPATH": str(REPO)},
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
        )

    def wait_healthy(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while not healthy(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])
                raise AssertionError(f"{self.service} on {self.port} did not become healthy:\n{tail}")
            time.sleep(0.2)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@contextmanager
def every_process_running(log_dir: Path) -> Iterator[None]:
    """Every process of the saga healthy: those already running (`make run`, compose's) as they are,
    the others started from this checkout until the block ends."""
    started = [ServiceProcess(p, HEALTH_PORTS[p], log_dir) for p in PROCESSES if not healthy(HEALTH_PORTS[p])]
    try:
        for process in started:
            process.wait_healthy()
        yield
    finally:
        for process in started:
            process.stop()


class EventTap:
    """Every event on every owner's events topic from now on, by order id (headers only: no decoding)."""

    def __init__(self, settings: Settings) -> None:
        self._consumer = Consumer(
            {
                **settings.kafka_client("admin"),
                "group.id": f"tap-{uuid4()}",
                "enable.auto.commit": False,
            }
        )
        topics = [events_topic(o) for o in OWNERS]
        partitions = []
        for topic in topics:
            for p in self._consumer.list_topics(topic, timeout=10).topics[topic].partitions:
                _, high = self._consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                partitions.append(TopicPartition(topic, p, high))
        self._consumer.assign(partitions)
        self._events: dict[str, list[dict[str, str]]] = defaultdict(list)
        self._lock = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for msg in self._consumer.consume(500, 0.2):
                if msg.error() is None:
                    headers = as_dict(msg.headers()) | {"topic": msg.topic()}
                    with self._lock:
                        self._events[msg.key().decode()].append(headers)
                        self._lock.notify_all()

    def of(self, order_id: UUID) -> list[dict[str, str]]:
        with self._lock:
            return list(self._events[str(order_id)])

    def wait(self, order_id: UUID, done: Callable[[list[dict[str, str]]], bool], timeout: float = 60) -> list:
        deadline = time.monotonic() + timeout
        with self._lock:
            while not done(self._events[str(order_id)]):
                left = deadline - time.monotonic()
                assert left > 0, (
                    f"order {order_id}: only {[e['event_type'] for e in self._events[str(order_id)]]}"
                )
                self._lock.wait(left)
            return list(self._events[str(order_id)])

    def wait_terminal(self, order_id: UUID, timeout: float = 60) -> list[dict[str, str]]:
        return self.wait(order_id, lambda es: any(e["event_type"] in TERMINAL for e in es), timeout)

    def wait_for(self, order_id: UUID, *event_types: str, timeout: float = 60) -> list[dict[str, str]]:
        """Until each of those events was seen: e.g. OrderCompleted and StockShipped, which the order
        service and inventory publish independently when they hear ShipmentCreated."""
        wanted = set(event_types)
        return self.wait(order_id, lambda es: wanted <= {e["event_type"] for e in es}, timeout)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._consumer.close()


def order_placed(customer: str, lines: list[tuple[str, int, str]], country: str = "DE") -> OrderPlaced:
    items = [{"sku": sku, "quantity": q, "unit_price": Decimal(price)} for sku, q, price in lines]
    return OrderPlaced.model_validate(
        {
            "order_id": uuid4(),
            "customer_id": customer,
            "items": items,
            "total": sum((Decimal(p) * q for _, q, p in lines), start=Decimal("0.00")),
            "currency": "EUR",
            "shipping_address": {
                "recipient": "Ada Lovelace",
                "street": "Main St 1",
                "city": "Berlin",
                "postal_code": "10115",
                "country": country,
            },
        }
    )


class Storefront:
    def __init__(self, publisher: EventPublisher) -> None:
        self.publisher = publisher

    def place(
        self, customer: str, lines: list[tuple[str, int, str]], country: str = "DE"
    ) -> tuple[OrderPlaced, Published]:
        event = order_placed(customer, lines, country)
        return event, self.publisher.publish(event)


class Schemas:
    """Read each service's own tables through its own role."""

    def __init__(self, settings: Settings) -> None:
        self._dsn = {s: libpq_dsn(settings.database_url(s)) for s in SERVICES}

    def rows(self, service: str, query: str, *params: object) -> list[dict[str, Any]]:
        with psycopg.connect(self._dsn[service], row_factory=dict_row) as conn:
            return conn.execute(query, params).fetchall()

    def one(self, service: str, query: str, *params: object) -> dict[str, Any] | None:
        rows = self.rows(service, query, *params)
        return rows[0] if rows else None


def dead_letter_counts(settings: Settings) -> dict[str, int]:
    consumer = Consumer({**settings.kafka_client("admin"), "group.id": f"dlt-{uuid4()}"})
    try:
        return {
            s: consumer.get_watermark_offsets(TopicPartition(dead_letter_topic(s), 0), timeout=10)[1]
            for s in SERVICES
        }
    finally:
        consumer.close()
