"""A service on the runtime: what it declares (`ServiceDefinition`) and the one place that wires it up.

A service's entrypoint builds its definition (handlers, what it publishes, its unit of work) and calls
`run_service`; everything else — Kafka, the registry, the outbox relay, dead letters, tracing, logs,
metrics and health — is built here, once, at start-up.
"""

from __future__ import annotations

import gc
import logging
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from confluent_kafka import Consumer, Producer
from sqlalchemy import Connection, Engine

from shared.access import replayable_topics
from shared.contracts import Event
from shared.messaging.batch import Handler
from shared.messaging.codec import EventCodec, registry_as
from shared.messaging.consumer import ConsumerSettings, EventConsumer, Hooks
from shared.messaging.health import serve_health
from shared.messaging.kafka_clients import PROMPT, Fetching, Refusals, consumer_config, producer_config
from shared.messaging.logs import configure_logging
from shared.messaging.outages import service_engine
from shared.messaging.publishing import MessageFactory, owners_topic
from shared.messaging.relay import OutboxRelay, RelaySettings
from shared.messaging.timers import Timer, TimerRunner
from shared.messaging.tracing import configure_tracing
from shared.messaging.unit_of_work import Needs, UnitOfWork
from shared.migrations import migrate
from shared.settings import HEALTH_PORTS, ServiceName, Settings, get_settings, libpq_dsn
from shared.topics import dead_letter_topic, namespace, topic_owners

log = logging.getLogger("shop.runtime")


@dataclass(frozen=True)
class ServiceDefinition:
    name: str
    handlers: Mapping[type[Event], Handler]
    publishes: Sequence[type[Event]]
    database_url: str
    uow_factory: Callable[[Connection], UnitOfWork] = UnitOfWork
    # What each handler reads, per event type: prefetched for the whole batch (unit_of_work.py).
    needs: Needs = field(default_factory=dict)
    # The database schema the service owns (its outbox lives there); its role's name by convention.
    schema: str = ""
    health_port: int = 0
    health_host: str = "127.0.0.1"
    topic_for: Callable[[type[Event]], str] = owners_topic
    # The prefix of the topics its relay may send to; shared.topics.namespace(name) unless set.
    topic_namespace: str = ""
    # Who its Kafka clients are to the broker (shared.access); its name unless set.
    kafka_principal: str = ""
    consumer: ConsumerSettings | None = None
    # How promptly its consumer's fetches are answered: PROMPT on a saga's path, UNHURRIED off it.
    fetching: Fetching = PROMPT
    relay: RelaySettings = field(default_factory=RelaySettings)
    hooks: Hooks = field(default_factory=Hooks)
    # What it does when time passes (timers.py): deadlines.
    timers: Sequence[Timer] = ()

    def consumer_settings(self) -> ConsumerSettings:
        if self.consumer is not None:
            return self.consumer
        topics = sorted({self.topic_for(t) for t in self.handlers})
        return ConsumerSettings(
            group=self.name,
            topics=topics,
            dead_letter_topic=dead_letter_topic(self.name),
            topic_owners=topic_owners(),
            replayable_topics=replayable_topics(),
        )


class Service:
    """Everything a running service is made of, built from its definition and the settings."""

    def __init__(self, definition: ServiceDefinition, settings: Settings) -> None:
        self.definition = definition
        self.stop = threading.Event()
        # No pre-ping (a round trip before every batch): a connection found dead fails its batch with a
        # transient error, the pool discards it, and the retry gets a fresh one.
        self.engine: Engine = service_engine(definition.database_url, pool_size=4)
        registry = registry_as(settings)  # a reader: provisioning registered every schema
        self.codec = EventCodec(registry)
        self.codec.look_up(definition.publishes)  # provisioning registered them
        self.codec.warm(definition.handlers)
        factory = MessageFactory(self.codec, definition.name, definition.topic_for)
        consumer_settings = definition.consumer_settings()
        self.refusals = Refusals()
        kafka = {
            **settings.kafka_client(definition.kafka_principal or definition.name),
            "error_cb": self.refusals.error_cb,
        }
        self.consumer = EventConsumer(
            settings=consumer_settings,
            consumer=Consumer(consumer_config(kafka, consumer_settings.group, definition.fetching)),
            dead_letter_producer=Producer(producer_config(kafka)),
            engine=self.engine,
            codec=self.codec,
            factory=factory,
            handlers=definition.handlers,
            uow_factory=definition.uow_factory,
            needs=definition.needs,
            hooks=definition.hooks,
            refusals=self.refusals,
        )
        self.relay = OutboxRelay(
            self.engine,
            definition.schema or self.engine.url.username or definition.name,
            kafka,
            definition.relay,
            listen_dsn=libpq_dsn(self.engine.url),
            topic_namespace=definition.topic_namespace or namespace(definition.name),
        )
        self._relay_thread = threading.Thread(target=self._run_relay, name="outbox-relay", daemon=True)
        self.timers = (
            TimerRunner(
                engine=self.engine,
                service=definition.name,
                uow_factory=definition.uow_factory,
                factory=factory,
                timers=definition.timers,
            )
            if definition.timers
            else None
        )
        self._timer_thread = (
            threading.Thread(target=self._run_timers, name="timers", daemon=True) if self.timers else None
        )
        self.failed = False

    def _run_relay(self) -> None:
        try:
            self.relay.run(self.stop)
        except Exception:
            log.exception("outbox relay stopped on an unexpected error")
            self.failed = True
            self.stop.set()  # a service that cannot publish must not keep consuming

    def _run_timers(self) -> None:
        assert self.timers is not None
        try:
            self.timers.run(self.stop)
        except Exception:
            log.exception("timers stopped on an unexpected error")
            self.failed = True
            self.stop.set()  # a deadline that can never fire must not pass unnoticed

    def health(self) -> dict[str, object]:
        now = time.monotonic()
        since_poll = now - self.consumer.last_poll
        relay_alive = self._relay_thread.is_alive()
        # A relay that keeps failing (broker away) is alive but not publishing: what waits grows old.
        # Parked rows are counted, not judged: the rest of the outbox flows past them.
        relay = self.relay.health()
        refused = self.refusals.recent()
        timers = self.timers.health(now) if self.timers else {}
        return {
            "healthy": relay_alive
            and refused is None
            and bool(timers.get("timers_healthy", True))
            and since_poll < 60
            and bool(relay["relay_healthy"])
            and not self.stop.is_set(),
            "service": self.definition.name,
            "seconds_since_poll": round(since_poll, 1),
            "assigned_partitions": len(self.consumer.assigned),
            "relay_alive": relay_alive,
            "kafka_refused": refused,
            **relay,
            **timers,
        }

    def run(self) -> None:
        """Until SIGTERM/SIGINT (or stop is set): finish the batch in hand, commit, close."""
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: self.stop.set())
        if self.definition.health_port:
            serve_health(self.definition.health_host, self.definition.health_port, self.health)
        self._relay_thread.start()
        if self._timer_thread:
            self._timer_thread.start()
        log.info("%s running", self.definition.name)
        try:
            self.consumer.run(self.stop)
        finally:
            self.stop.set()
            self._relay_thread.join(timeout=30)
            if self._timer_thread:
                self._timer_thread.join(timeout=30)
            self.engine.dispose()
            log.info("%s stopped", self.definition.name)
        if self.failed:
            raise SystemExit(1)  # a supervisor restarts it; exiting 0 would say all was well


def run_service(definition: ServiceDefinition, settings: Settings) -> None:
    configure_logging(definition.name)
    provider = configure_tracing(
        settings.otel_service_name or definition.name,
        settings.otel_exporter_otlp_endpoint,
        settings.otel_traces_sampler_arg,
    )
    try:
        service = Service(definition, settings)
        freeze_start_up_heap()
        service.run()
    finally:
        provider.shutdown()


def freeze_start_up_heap() -> None:
    """Take what start-up built (modules, schemas, codecs, clients: alive as long as the process) out
    of the garbage collector's reach. A full collection walks every object it tracks: with the start-up
    heap in, the collector took about a fifth of the runtime's CPU per event (`make bench-core`)."""
    gc.collect()
    gc.freeze()


def serve(
    name: ServiceName,
    handlers: Mapping[type[Event], Handler],
    publishes: Sequence[type[Event]],
    uow_factory: Callable[[Connection], UnitOfWork],
    needs: Needs | None = None,
    timers: Sequence[Timer] = (),
    fetching: Fetching = PROMPT,
) -> None:
    """A service's whole entrypoint: settings, logs, migrations, then the runtime until SIGTERM."""
    settings = get_settings()
    url = settings.database_url(name)
    configure_logging(name)
    migrate(name, url)
    definition = ServiceDefinition(
        name=name,
        handlers=handlers,
        publishes=publishes,
        database_url=url.render_as_string(hide_password=False),
        uow_factory=uow_factory,
        needs=needs or {},
        timers=timers,
        fetching=fetching,
        schema=url.username or name,
        health_port=settings.health_port or HEALTH_PORTS[name],
        health_host=settings.health_host,
    )
    run_service(definition, settings)
