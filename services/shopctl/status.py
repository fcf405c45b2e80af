"""`shopctl status`: every component and service, reachable or not, with lag, backlog, parked outbox rows
and dead letters; and the sagas open, and past their deadline."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import typer
from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
from rich.console import Console
from rich.table import Table

from services.shopctl import kafka
from services.shopctl.errors import CliError
from services.shopctl.readmodel import ReadModel
from shared.access import HEARS, OPERATOR_GROUP_PREFIX
from shared.settings import PROCESSES, ServiceName, Settings, get_settings
from shared.topics import dead_letter_topic, events_topic

console = Console()


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url if "://" in url else f"//{url}")
    try:
        with socket.create_connection((parts.hostname or "localhost", parts.port or default_port), timeout=2):
            return True
    except OSError:
        return False


def _health(process: ServiceName, settings: Settings) -> dict[str, Any] | None:
    try:
        return httpx.get(settings.health_url(process, "/health"), timeout=2).json()
    except (httpx.HTTPError, ValueError):
        return None


def _metric(process: ServiceName, name: str, settings: Settings) -> float | None:
    try:
        text = httpx.get(settings.health_url(process, "/metrics"), timeout=2).text
    except httpx.HTTPError:
        return None
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{")]
    return sum(values) if values else None


def _lag(admin: AdminClient, consumer: Consumer, group: str) -> int | None:
    from confluent_kafka import ConsumerGroupTopicPartitions

    try:
        result = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(10)
    except KafkaException:
        return None
    heard = {events_topic(owner) for owner in HEARS[group]}
    lag = 0
    for tp in result.topic_partitions:
        # Offsets a group still holds on a topic it no longer hears (order.events, before OrderPlaced
        # moved) are history, not lag.
        if tp.offset < 0 or tp.topic not in heard:
            continue
        _, high = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=5)
        lag += max(0, high - tp.offset)
    return lag


def _health_text(health: dict[str, Any] | None) -> str:
    if health is None:
        return "[red]unreachable[/]"
    return "[green]healthy[/]" if health.get("healthy") else "[red]unhealthy[/]"


def _parked_text(parked: float | None) -> str:
    # A warning, not an outage: the rest of the outbox flows past them (`shopctl outbox list`).
    if parked is None:
        return "-"
    return f"[yellow]{parked:.0f}[/]" if parked else "0"


def _sagas_line(s: Settings) -> str:
    """Open sagas as the read model has them, and those past the order deadline (`order stuck`)."""
    deadline = s.order_saga_timeout_seconds
    try:
        opened, stuck, oldest = ReadModel(s).open_sagas(timedelta(seconds=deadline))
    except CliError as exc:
        return f"sagas: [red]{exc}[/]"
    age = "" if oldest is None else f", the oldest for {(datetime.now(UTC) - oldest).total_seconds():.0f} s"
    past = (
        f"[yellow]{stuck} past the {deadline:g} s deadline[/] (`shopctl order stuck`)"
        if stuck
        else "none stuck"
    )
    return f"sagas: {opened} open{age}; {past}"


def run() -> None:
    """Each component and service: reachable or not, consumer lag, outbox backlog and parked rows, dead
    letters. Exits non-zero when something is down; parked rows are shown in yellow, not counted down."""
    s = get_settings()
    components = Table("component", "endpoint", "state", title="components", title_justify="left")
    checks = {
        "kafka": (s.kafka_bootstrap_servers, 9092),
        "schema registry": (s.schema_registry_url, 8081),
        "postgres": (s.admin_database_url().render_as_string(), 5432),
        "jaeger (otlp)": (s.otel_exporter_otlp_endpoint, 4317),
        "jaeger (query)": (s.jaeger_query_url, 16686),
    }
    down = 0
    for name, (url, port) in checks.items():
        ok = _reachable(url, port)
        down += not ok
        shown = url.split("@")[-1]
        components.add_row(name, shown, "[green]reachable[/]" if ok else "[red]unreachable[/]")
    console.print(components)

    admin = consumer = None
    if _reachable(s.kafka_bootstrap_servers, 9092):
        try:  # reachable, but it may refuse the operator: say so, and show the rest without Kafka
            config = kafka.checked()
            admin = AdminClient(config)
            consumer = Consumer({**config, "group.id": f"{OPERATOR_GROUP_PREFIX}status"})
        except CliError as exc:
            down += 1
            console.print(f"[red]{exc}[/]")
    services = Table(
        "service",
        "health",
        "partitions",
        "consumer lag",
        "outbox backlog",
        "parked",
        "dead letters",
        title="services",
        title_justify="left",
    )
    for process in PROCESSES:
        health = _health(process, s)
        down += health is None or not health.get("healthy")
        # Not `if admin`: a client is falsy while its queue is empty (it has a __len__).
        lag = _lag(admin, consumer, process) if admin is not None and consumer is not None else None
        dead = None
        if consumer is not None:
            dead = consumer.get_watermark_offsets(TopicPartition(dead_letter_topic(process), 0), timeout=5)[1]
        backlog = _metric(process, "shop_outbox_backlog", s)
        parked = _metric(process, "shop_outbox_parked", s)
        services.add_row(
            process,
            _health_text(health),
            "-" if health is None else str(health["assigned_partitions"]),
            "-" if lag is None else str(lag),
            "-" if backlog is None else f"{backlog:.0f}",
            _parked_text(parked),
            "-" if dead is None else str(dead),
        )
    console.print(services)
    if consumer is not None:
        consumer.close()
    console.print(_sagas_line(s))
    if down:
        raise typer.Exit(1)
