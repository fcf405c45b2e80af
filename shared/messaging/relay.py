"""The outbox relay: publishes what the service decided, in order, at least once.

One relay at a time per service schema does the work (it locks the schema's relay_lock row for the
batch), so rows of one key are never published out of order by two instances; the others wait their
turn. It sends only to the service's own topics: a row naming any other is parked, whoever wrote it.
A row is marked published only after the broker acknowledged it (idempotent producer, acks=all):
killed at any point, the relay publishes again what it had not marked, and consumers absorb the
duplicates by event id.

A row the broker refuses for good (REFUSALS: too large, unknown topic, not authorized) is parked with
the broker's error, and every later row of its key is parked behind it, those in the table and those
still to come: a key never publishes past a parked row until an operator retries or discards it
(shared/messaging/parked.py), and the rest of the outbox flows on. Any other failure (the broker away,
a timeout) fails the whole batch, which is retried with backoff.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import psycopg
from confluent_kafka import KafkaError, KafkaException, Producer
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from shared.messaging import metrics
from shared.messaging.driver import commit_in_pipeline, cursor, pipelined, transaction
from shared.messaging.kafka_clients import produce, producer_config
from shared.messaging.parked import BEHIND, PENDING, TRY_RELAY_LOCK
from shared.messaging.retry import Backoff
from shared.messaging.tables import outbox, outbox_channel, processed_events

log = logging.getLogger("shop.relay")


@dataclass(frozen=True)
class RelaySettings:
    batch_size: int = 500
    # Fallback when a notification is missed (e.g. the LISTEN connection was being re-established).
    poll_interval: float = 1.0
    delivery_timeout: float = 30.0
    # Published and discarded rows are kept a while for inspection; the relay never reads them again.
    retention: timedelta = timedelta(days=7)
    # Handled-event records must outlive every copy of the event a consumer could still be given: the
    # topic keeps events 7 days (longer, until their segment rolls), and a group idle past the
    # broker's offsets retention (7 days) starts again from the earliest event.
    handled_retention: timedelta = timedelta(days=28)
    cleanup_every: float = 60.0
    cleanup_chunk: int = 10_000  # rows deleted per transaction
    # How often the outbox is measured (pending, parked, age of the oldest pending row): counts, not
    # at every wake-up.
    backlog_every: float = 5.0
    # Unhealthy once the oldest pending row is older than this; a measurement that old counts the
    # same. Above the delivery timeout: a batch in flight holds its rows that long.
    unhealthy_after: float = 60.0


# Errors that say this row is refused and will be again however often it is sent: its size or format,
# its topic (missing, invalid), our rights on that topic. Anything else is the broker's or the network's
# state, and fails the batch to be retried. CLUSTER_AUTHORIZATION_FAILED is deliberately not here: it
# refuses every row alike, an outage to report unhealthy, not a row to park (it would park them all).
REFUSALS = frozenset(
    {
        KafkaError.MSG_SIZE_TOO_LARGE,
        KafkaError.RECORD_LIST_TOO_LARGE,
        KafkaError.INVALID_MSG_SIZE,
        KafkaError.INVALID_RECORD,
        KafkaError.UNSUPPORTED_FOR_MESSAGE_FORMAT,
        KafkaError.POLICY_VIOLATION,
        KafkaError._INVALID_ARG,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._UNKNOWN_TOPIC,
        KafkaError._UNKNOWN_PARTITION,
        KafkaError.TOPIC_EXCEPTION,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
    }
)
_MISSING_TOPIC = frozenset({KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC})


def is_refusal(err: KafkaError) -> bool:
    return err.code() in REFUSALS and not err.fatal()


def _reason(err: KafkaError) -> str:
    return f"{err.name()}: {err.str()}"


# Plain SQL, written once: the relay's statements run per batch, and a Core statement pays for its
# cache key (and an IN list for its expansion) every time.
# The relay's lock and, only once it is ours, the next pending rows, each with the first parked row of
# its key before it, if any (the parked-rows index answers): one statement. No row: another instance
# has the lock; one row of nulls: the lock and nothing to send. Rows another relay instance holds are
# skipped instead of waited for.
_LOCK_AND_NEXT = (
    "SELECT o.id, o.topic, o.message_key, o.payload, o.headers, o.behind "
    f"FROM ({TRY_RELAY_LOCK}) AS held LEFT JOIN LATERAL ("
    "SELECT o.id, o.topic, o.message_key, o.payload, o.headers, (SELECT min(e.id) FROM "
    f"{outbox.name} e WHERE e.message_key = o.message_key AND e.parked_at IS NOT NULL AND e.id < o.id) "
    f"AS behind FROM {outbox.name} o WHERE {PENDING} ORDER BY o.id LIMIT %s FOR UPDATE OF o SKIP LOCKED"
    ") AS o ON true"
)
_MARK_PUBLISHED = f"UPDATE {outbox.name} SET published_at = now() WHERE id = ANY(%s::bigint[])"
_COUNT_PENDING = f"SELECT count(*) FROM {outbox.name} WHERE {PENDING}"

# One statement per outcome and batch, whatever the number of rows.
_PARK_REFUSED = (
    f"UPDATE {outbox.name} SET parked_at = now(), park_reason = r.reason "
    "FROM unnest(%s::bigint[], %s::text[]) AS r(id, reason) WHERE outbox.id = r.id"
)
# Behind each parked head of a key: every pending row after it, in this batch and in the table.
_PARK_BEHIND = (
    f"UPDATE {outbox.name} SET parked_at = now(), park_reason = '{BEHIND}' || h.head "
    "FROM unnest(%s::text[], %s::bigint[]) AS h(message_key, head) "
    f"WHERE outbox.message_key = h.message_key AND outbox.id > h.head AND {PENDING}"
)
_DELETE_OLD_ROWS = (
    f"DELETE FROM {outbox.name} WHERE id IN (SELECT id FROM {outbox.name} "
    "WHERE published_at < now() - %(age)s OR discarded_at < now() - %(age)s LIMIT %(chunk)s)"
)
_DELETE_OLD_HANDLED = (
    f"DELETE FROM {processed_events.name} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {processed_events.name} "
    "WHERE processed_at < now() - %(age)s LIMIT %(chunk)s))"
)
_MEASURE = text(
    f"SELECT (SELECT count(*) FROM {outbox.name} WHERE {PENDING}) AS pending, "
    f"(SELECT count(*) FROM {outbox.name} WHERE parked_at IS NOT NULL) AS parked, "
    f"(SELECT extract(epoch FROM clock_timestamp() - created_at) FROM {outbox.name} WHERE {PENDING} "
    "ORDER BY id LIMIT 1) AS oldest"
)


@dataclass(frozen=True)
class OutboxState:
    pending: int
    parked: int
    oldest_pending_seconds: float | None  # None: nothing pending


@dataclass
class _Deliveries:
    """What became of one batch's rows, filled in by produce() and its delivery callbacks."""

    acknowledged: list[int] = field(default_factory=list)
    refused: dict[int, str] = field(default_factory=dict)  # row id: the broker's reason
    failed: list[KafkaError] = field(default_factory=list)  # not the row's fault: retry the batch


class OutboxRelay:
    def __init__(
        self,
        engine: Engine,
        schema: str,
        kafka: Mapping[str, object],
        settings: RelaySettings | None = None,
        listen_dsn: str | None = None,
        *,
        topic_namespace: str | None = None,
    ) -> None:
        """`kafka`: the broker and the principal to send as (Settings.kafka_client).
        `topic_namespace`: the prefix of the topics this relay may send to, its service's own
        (shared.topics.namespace); a row naming any other is parked. None lets every topic through:
        for tests of the relay's mechanics, never a service."""
        self._engine = engine
        self._namespace = topic_namespace
        self._schema = schema
        self._producer_config = producer_config(kafka)
        self._producer = Producer(self._producer_config)
        self._settings = settings or RelaySettings()
        self._listen_dsn = listen_dsn
        self._known_topics: set[str] = set()  # found in the broker's metadata
        self._backoff = Backoff(initial=0.2, maximum=5.0)
        self._last_cleanup = 0.0
        self._last_measure = 0.0
        # The last measurement and when it was taken (health reads both, from another thread).
        self._measured: tuple[float, OutboxState | None] = (time.monotonic(), None)
        # Whether this instance got the relay's lock the last time it tried (None: not tried yet).
        self.lock_held: bool | None = None
        self.after_publish: Callable[[list[int]], None] | None = None  # a test's hook to die mid-way

    def relay_once(self) -> int:
        """Publish one batch; returns how many rows it settled, published or parked (0: nothing to do
        or not our turn)."""
        with transaction(self._engine) as conn:
            # The batch's statements on the driver itself (driver.py says why), in one pipeline: BEGIN
            # travels with the first, and the marks of a batch all acknowledged with the COMMIT (two
            # round trips); what else a batch needs (parking) follows the pipeline.
            with pipelined(conn, begin=True):
                rows = cursor(conn).execute(_LOCK_AND_NEXT, (self._settings.batch_size,)).fetchall()
                self.lock_held = bool(rows)
                rows = [r for r in rows if r.id is not None]
                if not rows:
                    commit_in_pipeline(conn)
                    return 0
                # Rows of a key parked before them are not sent: they join it.
                deliveries = self._publish([r for r in rows if r.behind is None])
                if self.after_publish:
                    self.after_publish(deliveries.acknowledged)
                settled = len(deliveries.acknowledged) == len(rows)
                if settled:
                    self._mark_published(conn, deliveries.acknowledged)
                    commit_in_pipeline(conn)
            if not settled:
                self._settle(conn, rows, deliveries)
        metrics.OUTBOX_PUBLISHED.labels(self._schema).inc(len(deliveries.acknowledged))
        return len(rows)

    def _settle(self, conn: Connection, rows: Sequence[Any], deliveries: _Deliveries) -> None:
        """Mark what was acknowledged published, park what was refused, and park behind each key's
        first parked row every pending row of that key after it."""
        heads: dict[str, int] = {}
        for r in rows:  # in id order: a key's first parked row is its head
            if r.behind is not None:
                heads.setdefault(r.message_key, r.behind)
            elif r.id in deliveries.refused:
                heads.setdefault(r.message_key, r.id)
        if deliveries.acknowledged:
            self._mark_published(conn, deliveries.acknowledged)
        if deliveries.refused:
            refused = list(deliveries.refused.items())
            conn.exec_driver_sql(_PARK_REFUSED, ([i for i, _ in refused], [r for _, r in refused]))
            by_id = {r.id: r for r in rows}
            for row_id, reason in refused:
                row = by_id[row_id]
                log.warning(
                    "outbox row %d parked (topic %s, key %s): %s", row_id, row.topic, row.message_key, reason
                )
            # Acknowledged after an earlier row of its key was refused (the broker refused one record
            # and took the next): it is out, and stays marked so; the order of that key is broken.
            overtaking = [i for i in deliveries.acknowledged if i > heads.get(by_id[i].message_key, i)]
            if overtaking:
                log.error(
                    "outbox rows %s were acknowledged after an earlier row of their key was refused",
                    overtaking,
                )
        if heads:
            behind = conn.exec_driver_sql(_PARK_BEHIND, (list(heads), list(heads.values()))).rowcount
            if behind:
                log.warning(
                    "%d outbox rows parked behind rows %s of their keys", behind, sorted(heads.values())
                )

    @staticmethod
    def _mark_published(conn: Connection, ids: list[int]) -> None:
        # Ids are our own integers: an array literal, not a list adapted element by element.
        cursor(conn).execute(_MARK_PUBLISHED, ("{" + ",".join(map(str, ids)) + "}",))

    def _publish(self, rows: Sequence[Any]) -> _Deliveries:
        deliveries = _Deliveries()
        refused_keys: set[str] = set()
        batch_topics = {r.topic for r in rows}
        own = self._namespace
        foreign = set() if own is None else {t for t in batch_topics if not t.startswith(own)}
        missing = self._foreign(foreign) | self._missing_topics(batch_topics - foreign)
        looked_up = set(missing)  # topics asked about in this batch
        for row in rows:
            if row.message_key in refused_keys:
                continue  # refused before sending: later rows of its key are parked behind it, not sent
            if row.topic in missing:
                deliveries.refused[row.id] = missing[row.topic]
                refused_keys.add(row.message_key)
                continue
            try:
                self._produce(row, deliveries, looked_up)
            except KafkaException as exc:
                err: KafkaError = exc.args[0]
                if not is_refusal(err):
                    deliveries.failed.append(err)
                    break  # the batch is retried: send nothing more that could overtake this row
                deliveries.refused[row.id] = _reason(err)
                refused_keys.add(row.message_key)
            except (TypeError, ValueError, AttributeError) as exc:  # headers produce() cannot take
                deliveries.refused[row.id] = f"{type(exc).__name__}: {exc}"
                refused_keys.add(row.message_key)
        remaining = self._producer.flush(self._settings.delivery_timeout)
        if remaining or deliveries.failed:
            failures = deliveries.failed
            if any(f.fatal() for f in failures):
                # An idempotent producer that hit a fatal error can never send again: start afresh.
                log.error("relay producer failed fatally, replacing it: %s", failures[0])
                self._producer = Producer(self._producer_config)
            reason = failures[0] if failures else f"{remaining} messages undelivered"
            raise RelayError(f"{len(failures)} of {len(rows)} not acknowledged: {reason}")
        return deliveries

    def _produce(self, row: Any, deliveries: _Deliveries, looked_up: set[str]) -> None:
        def delivered(err: KafkaError | None, _msg: object, row_id: int = row.id) -> None:
            if err is None:
                deliveries.acknowledged.append(row_id)
            elif is_refusal(err):
                deliveries.refused[row_id] = _reason(err)
            else:
                deliveries.failed.append(err)

        while True:
            try:
                produce(
                    self._producer,
                    row.topic,
                    value=row.payload,
                    key=row.message_key,
                    headers=list(row.headers.items()),
                    on_delivery=delivered,
                )
                return
            except KafkaException as exc:
                # Known to exist, now missing to the producer: deleted since, or the producer's own
                # memory of having missed it (the topic since created, an operator's fix before a
                # retry). Asking once tells which, instead of parking the row on hearsay.
                if exc.args[0].code() not in _MISSING_TOPIC or row.topic in looked_up:
                    raise
                looked_up.add(row.topic)
                self._known_topics.discard(row.topic)
                if self._missing_topics({row.topic}):
                    raise

    def _foreign(self, topics: set[str]) -> dict[str, str]:
        """Topics not this service's, with why: whoever wrote such a row (a bug, or a role that could
        write the outbox), the service does not publish on another's topic."""
        return {
            t: f"NOT_OWN_TOPIC: {t} is not one of this service's topics ({self._namespace}*)" for t in topics
        }

    def _missing_topics(self, topics: set[str]) -> dict[str, str]:
        """The batch's topics that the broker does not have (or not for us), with why. Asked before
        anything is sent: librdkafka would report a missing topic only after its propagation time,
        by when later rows of the same key (to another topic) may be out, ahead of it. A topic found
        is remembered; one missing is asked about again in the next batch that has rows for it."""
        missing = {}
        for topic in topics - self._known_topics:
            found = self._producer.list_topics(topic, timeout=5).topics.get(topic)
            err = KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART) if found is None else found.error
            if err is None:
                self._known_topics.add(topic)
            elif is_refusal(err):
                missing[topic] = _reason(err)
            else:
                raise KafkaException(err)  # e.g. no leader yet: the batch is retried
        return missing

    def backlog(self) -> int:
        """Rows waiting to be published (parked ones are not waiting)."""
        with self._engine.connect() as conn:
            return conn.exec_driver_sql(_COUNT_PENDING).scalar() or 0

    def measure(self) -> OutboxState:
        with self._engine.connect() as conn:
            m = conn.execute(_MEASURE).one()
        oldest = None if m.oldest is None else float(m.oldest)
        return OutboxState(pending=m.pending, parked=m.parked, oldest_pending_seconds=oldest)

    def health(self) -> dict[str, object]:
        """Healthy while the oldest pending row is younger than `unhealthy_after`, as last measured plus
        the time since (a measurement going stale ages with it); parked rows are shown, not judged."""
        measured_at, state = self._measured
        since = time.monotonic() - measured_at
        oldest = (state.oldest_pending_seconds or 0.0) if state else 0.0
        return {
            "relay_healthy": oldest + since < self._settings.unhealthy_after,
            "relay_lock": {True: "held", False: "another instance", None: "not tried yet"}[self.lock_held],
            "outbox_oldest_pending_seconds": None if state is None else state.oldest_pending_seconds,
            "outbox_pending": None if state is None else state.pending,
            "outbox_parked": None if state is None else state.parked,
            "seconds_since_outbox_measured": round(since, 1),
        }

    def clean_up(self) -> tuple[int, int]:
        """Delete published and discarded rows, and handled-event records, older than their retention.
        Parked rows stay, whatever their age: they wait for an operator.

        In chunks, a transaction each: after a long outage the backlog of old rows could take one
        DELETE past the role's statement timeout, every time, and clean-up would never get anywhere."""
        retention, handled_retention = self._settings.retention, self._settings.handled_retention
        rows = self._delete_in_chunks(_DELETE_OLD_ROWS, retention)
        handled = self._delete_in_chunks(_DELETE_OLD_HANDLED, handled_retention)
        return rows, handled

    def _delete_in_chunks(self, statement: str, retention: timedelta) -> int:
        chunk, total = self._settings.cleanup_chunk, 0
        while True:
            with self._engine.begin() as conn:
                deleted = conn.exec_driver_sql(statement, {"age": retention, "chunk": chunk}).rowcount
            total += deleted
            if deleted < chunk:
                return total

    def run(self, stop: threading.Event) -> None:
        """Until stop is set: drain the outbox, then sleep until notified (or the poll interval passes)."""
        listener = _Listener(self._listen_dsn, outbox_channel(self._schema)) if self._listen_dsn else None
        attempt = 0
        try:
            while not stop.is_set():
                try:
                    while True:
                        full = self.relay_once() == self._settings.batch_size
                        self._housekeeping()  # between batches too: a long drain keeps health fresh
                        if not full or stop.is_set():
                            break
                    attempt = 0
                except (RelayError, KafkaException, DBAPIError, psycopg.Error) as exc:
                    attempt += 1
                    delay = self._backoff.delay(attempt)
                    log.warning("relay failed (attempt %d), retrying in %.1fs: %s", attempt, delay, exc)
                    self._housekeeping()  # the age of what waits keeps being measured
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
            self._housekeeping()  # however long the poll interval: a stale measurement is unhealthy

    def _housekeeping(self) -> None:
        """Measure and clean up when due; a failure leaves the last measurement to go stale."""
        now = time.monotonic()
        try:
            if now - self._last_measure >= self._settings.backlog_every:
                self._last_measure = now
                state = self.measure()
                self._measured = (now, state)
                metrics.OUTBOX_BACKLOG.labels(self._schema).set(state.pending)
                metrics.OUTBOX_PARKED.labels(self._schema).set(state.parked)
                metrics.OUTBOX_OLDEST_PENDING.labels(self._schema).set(state.oldest_pending_seconds or 0.0)
            if now - self._last_cleanup >= self._settings.cleanup_every:
                self._last_cleanup = now
                rows, handled = self.clean_up()
                if rows or handled:
                    log.info("cleaned up %d outbox rows, %d handled-event records", rows, handled)
        except (DBAPIError, psycopg.Error) as exc:
            log.warning("outbox housekeeping failed: %s", exc)


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
