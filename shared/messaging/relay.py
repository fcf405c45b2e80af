"""The outbox relay: publishes what the service decided, in order, at least once.

One relay at a time per service schema does the work (a transaction-scoped advisory lock), so rows of
one key are never published out of order by two instances; the others wait their turn. A batch is
marked published only after the broker acknowledged every message of it (idempotent producer,
acks=all): killed at any point, the relay publishes again what it had not marked, and consumers
absorb the duplicates by event id.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import psycopg
from confluent_kafka import KafkaError, KafkaException, Producer
from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.exc import DBAPIError

from shared.messaging import metrics
from shared.messaging.retry import Backoff
from shared.messaging.tables import outbox, outbox_channel, processed_events

log = logging.getLogger("shop.relay")


@dataclass(frozen=True)
class RelaySettings:
    batch_size: int = 500
    # Fallback when a notification is missed (e.g. the LISTEN connection was being re-established).
    poll_interval: float = 1.0
    delivery_timeout: float = 30.0
    # Published rows are kept a while for inspection; they are never read again by the relay.
    retention: timedelta = timedelta(days=7)
    # Handled-event records must outlive every copy of the event a consumer could still be given: the
    # topic keeps events 7 days (longer, until their segment rolls), and a group idle past the
    # broker's offsets retention (7 days) starts again from the earliest event.
    handled_retention: timedelta = timedelta(days=28)
    cleanup_every: float = 60.0
    backlog_every: float = 5.0


def producer_config(bootstrap_servers: str) -> dict[str, object]:
    return {
        "bootstrap.servers": bootstrap_servers,
        "enable.idempotence": True,  # implies acks=all, ordered retries per partition
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "lz4",
        "message.timeout.ms": 30_000,
    }


class OutboxRelay:
    def __init__(
        self,
        engine: Engine,
        schema: str,
        bootstrap_servers: str,
        settings: RelaySettings | None = None,
        listen_dsn: str | None = None,
    ) -> None:
        self._engine = engine
        self._schema = schema
        self._producer_config = producer_config(bootstrap_servers)
        self._producer = Producer(self._producer_config)
        self._settings = settings or RelaySettings()
        self._listen_dsn = listen_dsn
        # One lock per schema: every instance of a service contends for the same one.
        self._lock_key = zlib.crc32(f"outbox:{schema}".encode())
        self._backoff = Backoff(initial=0.2, maximum=5.0)
        self._last_cleanup = 0.0
        self._last_backlog = 0.0
        # When the relay last went through the outbox without an error (health reads it).
        self.last_ok = time.monotonic()
        self.after_publish: Callable[[list[int]], None] | None = None  # a test's hook to die mid-way

    def relay_once(self) -> int:
        """Publish one batch; returns how many rows it published (0: nothing to do or not our turn)."""
        with self._engine.begin() as conn:
            if not conn.scalar(select(func.pg_try_advisory_xact_lock(self._lock_key))):
                return 0
            rows = conn.execute(
                select(outbox.c.id, outbox.c.topic, outbox.c.message_key, outbox.c.payload, outbox.c.headers)
                .where(outbox.c.published_at.is_(None))
                .order_by(outbox.c.id)
                .limit(self._settings.batch_size)
                .with_for_update(skip_locked=True)
            ).all()
            if not rows:
                return 0
            self._publish([(r.topic, r.message_key, r.payload, r.headers) for r in rows])
            ids = [r.id for r in rows]
            if self.after_publish:
                self.after_publish(ids)
            conn.execute(update(outbox).where(outbox.c.id.in_(ids)).values(published_at=func.now()))
        metrics.OUTBOX_PUBLISHED.labels(self._schema).inc(len(ids))
        return len(ids)

    def _publish(self, messages: list[tuple[str, str, bytes, dict[str, str]]]) -> None:
        failures: list[KafkaError] = []

        def delivered(err: KafkaError | None, _msg: object) -> None:
            if err is not None:
                failures.append(err)

        try:
            for topic, key, payload, headers in messages:
                while True:
                    try:
                        self._producer.produce(
                            topic,
                            value=payload,
                            key=key,
                            headers=list(headers.items()),
                            on_delivery=delivered,
                        )
                        break
                    except BufferError:
                        # Local queue full: let deliveries drain, then go on.
                        self._producer.poll(0.1)
        except KafkaException as exc:  # refused before sending, e.g. a message larger than allowed
            failures.append(exc.args[0])
        remaining = self._producer.flush(self._settings.delivery_timeout)
        if remaining or failures:
            if any(f.fatal() for f in failures):
                # An idempotent producer that hit a fatal error can never send again: start afresh.
                log.error("relay producer failed fatally, replacing it: %s", failures[0])
                self._producer = Producer(self._producer_config)
            reason = failures[0] if failures else f"{remaining} messages undelivered"
            raise RelayError(f"{len(failures)} of {len(messages)} not acknowledged: {reason}")

    def backlog(self) -> int:
        with self._engine.connect() as conn:
            return (
                conn.scalar(select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None)))
                or 0
            )

    def clean_up(self) -> tuple[int, int]:
        """Delete published rows and handled-event records older than the retention."""
        with self._engine.begin() as conn:
            published = conn.execute(
                delete(outbox).where(outbox.c.published_at < func.now() - self._settings.retention)
            ).rowcount
            handled = conn.execute(
                delete(processed_events).where(
                    processed_events.c.processed_at < func.now() - self._settings.handled_retention
                )
            ).rowcount
        return published, handled

    def run(self, stop: threading.Event) -> None:
        """Until stop is set: drain the outbox, then sleep until notified (or the poll interval passes)."""
        listener = _Listener(self._listen_dsn, outbox_channel(self._schema)) if self._listen_dsn else None
        attempt = 0
        try:
            while not stop.is_set():
                try:
                    while self.relay_once() == self._settings.batch_size and not stop.is_set():
                        pass
                    self._housekeeping()
                    attempt = 0
                    self.last_ok = time.monotonic()
                except (RelayError, KafkaException, DBAPIError, psycopg.Error) as exc:
                    attempt += 1
                    delay = self._backoff.delay(attempt)
                    log.warning("relay failed (attempt %d), retrying in %.1fs: %s", attempt, delay, exc)
                    stop.wait(delay)
                    continue
                self._idle(stop, listener)
        finally:
            if listener:
                listener.close()
            self._producer.flush(self._settings.delivery_timeout)

    def _idle(self, stop: threading.Event, listener: _Listener | None) -> None:
        """Until notified, stopped, or the poll interval has passed; stop is seen within half a second."""
        deadline = time.monotonic() + self._settings.poll_interval
        while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
            if listener is None:
                stop.wait(min(left, 0.5))
            elif listener.wait(min(left, 0.5)):
                return

    def _housekeeping(self) -> None:
        now = time.monotonic()
        if now - self._last_backlog >= self._settings.backlog_every:  # a count: not at every wake-up
            self._last_backlog = now
            metrics.OUTBOX_BACKLOG.labels(self._schema).set(self.backlog())
        if now - self._last_cleanup >= self._settings.cleanup_every:
            self._last_cleanup = now
            published, handled = self.clean_up()
            if published or handled:
                log.info("cleaned up %d published outbox rows, %d handled-event records", published, handled)


class RelayError(Exception):
    pass


class _Listener:
    """LISTEN on the outbox channel; reconnects on failure; never waits longer than asked."""

    def __init__(self, dsn: str, channel: str) -> None:
        self._dsn = dsn
        self._channel = channel
        self._conn: psycopg.Connection | None = None

    def wait(self, timeout: float) -> bool:
        """True if notified within the timeout."""
        try:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(self._dsn, autocommit=True)
                self._conn.execute(f'LISTEN "{self._channel}"')
                return True  # notifications sent while not listening are lost: look once more
            return any(True for _ in self._conn.notifies(timeout=timeout, stop_after=1))
        except psycopg.Error as exc:
            log.warning("outbox LISTEN connection lost: %s", exc)
            self.close()
            time.sleep(timeout)
            return False

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
