"""The consumer: every service's one loop from Kafka to its handlers and back out via the outbox.

Per batch: poll what is fetched; read each message's routing headers and decode it through the
registry; hand what this group handles to one database transaction (batch.py); send the poison to
the dead-letter topic; then store the offsets, after the database, for librdkafka to commit.
Transient failures retry the batch in place, in order, with backoff and paused partitions; a message
failing again and again is dead-lettered and the batch goes on without it. Rebalances drop what
the consumer no longer owns.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from sqlalchemy import Connection, Engine

from shared.contracts import Event
from shared.messaging import metrics
from shared.messaging.batch import BatchFailed, BatchTransaction, Handler, MessageFailed, PoisonFound
from shared.messaging.codec import EventCodec
from shared.messaging.dead_letters import DeadLetterSender, Failure
from shared.messaging.errors import (
    ForeignSource,
    InvalidHeader,
    Misrouted,
    PoisonMessage,
    RetriesExhausted,
    TransientError,
    UndecodableMessage,
)
from shared.messaging.headers import CAUSATION_ID, CORRELATION_ID, EVENT_ID, EVENT_TYPE, header
from shared.messaging.inbound import Inbound
from shared.messaging.kafka_clients import Refusals
from shared.messaging.logs import message_context
from shared.messaging.publishing import MessageFactory
from shared.messaging.retry import Backoff
from shared.messaging.routing import routing_of
from shared.messaging.tracing import trace_id_of
from shared.messaging.unit_of_work import Needs, UnitOfWork

log = logging.getLogger("shop.consumer")


@dataclass(frozen=True)
class ConsumerSettings:
    group: str
    topics: Sequence[str]
    dead_letter_topic: str
    batch_size: int = 500
    poll_timeout: float = 0.5
    # Under load (the last batch had `linger_from` messages or more), a batch waits for more messages
    # up to as long as the last one took, capped here: a batch's fixed cost (its statements, its
    # commit, the relay's turn) is then shared by more messages, and the machine keeps up with more.
    # Below that (a light or moderate load) nothing waits: at 100 orders/s, lingering from two messages
    # on cost p50 110-125 ms instead of 61-83.
    max_linger: float = 0.01
    linger_from: int = 32
    # Attempts for failures that may be the message's own (a handler's unexpected error, a database
    # error that is not an outage). Outages (database or registry unreachable) and concurrency conflicts
    # (deadlock, serialization failure: another transaction's doing, never the message's) are retried
    # for as long as they last.
    max_attempts: int = 5
    backoff: Backoff = field(default_factory=Backoff)
    lag_every: float = 5.0
    # Each topic's owner, the only source its records may name (shared.topics.topic_owners); a topic
    # not in it is not checked, and None checks none (tests of the runtime's mechanics).
    topic_owners: Mapping[str, str] | None = None
    # Where a replay header (a dead letter sent back for one group) is believed: the topics only their
    # owner and the operator may write (shared.access.replayable_topics). None: everywhere (tests).
    replayable_topics: frozenset[str] | None = None


@dataclass
class Hooks:
    """Points where tests inject real failures (e.g. the process dying between two commits)."""

    after_db_commit: Callable[[], None] | None = None


class EventConsumer:
    def __init__(
        self,
        *,
        settings: ConsumerSettings,
        consumer: Consumer,
        dead_letter_producer: Producer,
        engine: Engine,
        codec: EventCodec,
        factory: MessageFactory,
        handlers: Mapping[type[Event], Handler],
        uow_factory: Callable[[Connection], UnitOfWork] = UnitOfWork,
        needs: Needs | None = None,
        hooks: Hooks | None = None,
        refusals: Refusals | None = None,
    ) -> None:
        self._s = settings
        self.refusals = refusals or Refusals()
        self._consumer = consumer
        self._dlq = dead_letter_producer
        self._codec = codec
        self._factory = factory
        hooks = hooks or Hooks()
        self._batch = BatchTransaction(
            engine=engine,
            group=settings.group,
            handlers=handlers,
            factory=factory,
            uow_factory=uow_factory,
            needs=needs,
            after_commit=hooks.after_db_commit,
        )
        self._handlers = self._batch.handlers
        self._dead_letters = DeadLetterSender(
            dead_letter_producer, settings.group, settings.dead_letter_topic
        )
        self._revoked: set[tuple[str, int]] = set()
        self._subscribed = False
        self._last_lag = 0.0
        self._linger = 0.0  # how long the next batch waits for company (see ConsumerSettings.max_linger)
        self.last_poll = time.monotonic()
        self.assigned: set[tuple[str, int]] = set()
        # Metric children bound once, not looked up per batch.
        self._m_skipped = metrics.MESSAGES_SKIPPED
        self._m_batch = metrics.BATCH_SECONDS.labels(settings.group)
        self._m_batch_size = metrics.BATCH_SIZE.labels(settings.group)

    # -- the loop ---------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Consume until stop is set; then finish the batch in hand, commit and leave the group."""
        try:
            while not stop.is_set():
                self.poll_once(stop)
        finally:
            self._close()

    def poll_once(self, stop: threading.Event) -> int:
        """Consume, handle and commit one batch; returns how many messages it got."""
        if not self._subscribed:
            self._subscribed = True
            self._consumer.subscribe(
                list(self._s.topics), on_assign=self._on_assign, on_revoke=self._on_revoke
            )
        # Revocations seen from here on (inside consume, or during a retry's wait) drop their messages.
        self._revoked.clear()
        msgs = self._next_batch()
        self.last_poll = time.monotonic()
        if msgs:
            self._m_batch_size.observe(len(msgs))
            started = time.perf_counter()
            items = self._items(msgs)
            if not self._process(items, stop):
                return 0  # stopping mid-retry: nothing committed, the batch will be redelivered
            self._commit_offsets(items)
            took = time.perf_counter() - started
            self._m_batch.observe(took)
            self._linger = min(self._s.max_linger, took) if len(msgs) >= self._s.linger_from else 0.0
        if self.last_poll - self._last_lag >= self._s.lag_every:
            self._last_lag = self.last_poll
            self._report_lag()
        return len(msgs)

    def _next_batch(self) -> list[Message]:
        """What is already fetched, up to a batch; else wait for one message and take what came with it.

        consume(n, timeout) waits until it has n messages or the timeout passed: under a light load that
        would hold every message for the whole timeout. This handles the first at once, and under load
        lingers for more (max_linger), so that batches grow with the load."""
        size = self._s.batch_size
        msgs = self._consumer.consume(size, 0)
        if not msgs:
            msgs = self._consumer.consume(1, self._s.poll_timeout)
            if msgs:
                msgs += self._consumer.consume(size - 1, 0)
        if msgs and self._linger > 0 and len(msgs) < size:
            msgs += self._consumer.consume(size - len(msgs), self._linger)
        return msgs

    def _items(self, msgs: list[Message]) -> list[Inbound]:
        items = []
        append = items.append
        for msg in msgs:
            err = msg.error()
            if err is not None:
                if err.fatal():
                    raise KafkaException(err)  # this client cannot go on: exit, for a supervisor to restart
                if self.refusals.note(err):
                    log.error("the broker refused us: %s", err)
                elif err.code() != KafkaError._PARTITION_EOF:
                    log.error("consumer error: %s", err)
                continue
            headers = msg.headers()
            append(Inbound(msg, msg.topic(), msg.partition(), msg.offset(), headers, routing_of(headers)))
        return items

    def _process(self, items: list[Inbound], stop: threading.Event) -> bool:
        """Handle a batch until it commits; False if asked to stop before it could."""
        attempt = 0
        one_by_one = False  # after a failure no message could be blamed for: find the one
        while True:
            self._drop_revoked(items)
            try:
                self._decode(items)
                if one_by_one:
                    for item in items:
                        self._handle_in_one_transaction([item])
                else:
                    self._handle_in_one_transaction(items)
                self._send_dead_letters(items)
                return True
            except PoisonFound:
                continue  # an item turned out poison: at once, without it
            except BatchFailed as failed:
                if len(failed.items) > 1:
                    log.warning("batch failed, retried one message at a time: %s", failed.cause)
                    one_by_one = True
                    continue
                failure = MessageFailed(failed.items[0], failed.cause)
                reason, delay = self._failed(failure)
                if delay is None:
                    continue
            except MessageFailed as failed:
                reason, delay = self._failed(failed)
                if delay is None:
                    continue  # at once: the batch goes on without it
            except TransientError as exc:
                attempt += 1
                reason, delay = type(exc).__name__, self._s.backoff.delay(attempt)
                log.warning("transient failure, batch of %d retried in %.2fs: %s", len(items), delay, exc)
            metrics.RETRIES.labels(self._s.group, reason).inc()
            if not self._wait(delay, stop):
                return False

    def _failed(self, failed: MessageFailed) -> tuple[str, float | None]:
        """Count an attempt of the message that failed; (reason, delay), or no delay: it is poison now."""
        item, cause = failed.item, failed.cause
        item.attempts += 1
        if item.attempts >= self._s.max_attempts:
            item.poison = RetriesExhausted(cause, item.attempts)
            return type(cause).__name__, None
        return type(cause).__name__, self._s.backoff.delay(item.attempts)

    def _wait(self, delay: float, stop: threading.Event) -> bool:
        """Back off while staying in the group: paused partitions, polls that only serve callbacks."""
        self._consumer.pause(self._consumer.assignment())
        try:
            deadline = time.monotonic() + delay
            while (left := deadline - time.monotonic()) > 0:
                if stop.is_set():
                    return False
                msg = self._consumer.poll(min(left, 0.5))  # rebalance callbacks run here
                if msg is not None and msg.error() is None:
                    # From a partition assigned during the wait, so not paused: put it back, pause it.
                    self._consumer.seek(TopicPartition(msg.topic(), msg.partition(), msg.offset()))
                    self._consumer.pause(self._consumer.assignment())
        finally:
            self._consumer.resume(self._consumer.assignment())
        return True

    def _drop_revoked(self, items: list[Inbound]) -> None:
        """Forget messages of partitions revoked since they were fetched: their new owner handles them."""
        if not self._revoked:
            return
        first_dropped: dict[tuple[str, int], int] = {}
        kept = []
        for item in items:
            tp = (item.topic, item.partition)
            if tp in self._revoked:
                first_dropped[tp] = min(first_dropped.get(tp, item.offset), item.offset)
            else:
                kept.append(item)
        items[:] = kept
        for (topic, partition), offset in first_dropped.items():
            if (topic, partition) in self.assigned:
                # Revoked and given back meanwhile: the fetch position moved past what was dropped.
                try:
                    self._consumer.seek(TopicPartition(topic, partition, offset))
                except KafkaException as exc:
                    log.error("could not rewind %s[%d] to %d: %s", topic, partition, offset, exc)

    # -- one batch --------------------------------------------------------------------------------

    def _decode(self, items: list[Inbound]) -> None:
        """Decode what is for this group; skip (and count) the rest unread; find the poison."""
        group = self._s.group
        owners, replayable = self._s.topic_owners, self._s.replayable_topics
        for item in items:
            if item.event is not None or item.poison is not None or item.dead_lettered or item.committed:
                continue
            routing = item.routing
            if routing.problem is not None:
                item.poison = InvalidHeader(routing.problem)
                continue
            declared = routing.event_type
            if (
                routing.replay_group is not None
                and routing.replay_group != group
                and (replayable is None or item.topic in replayable)
            ):  # elsewhere the header is ignored: handled as any record (and skipped if already)
                self._skipped(item, declared or "unknown", "replay-for-another-group")
                continue
            if declared is not None and declared not in self._handlers:
                self._skipped(item, declared, "not-handled")
                continue
            try:
                envelope, event = self._codec.decode(item.msg.value())
                if declared is not None and declared != envelope.event_type:
                    raise InvalidHeader(
                        f"header {EVENT_TYPE} says {declared}, the record is {envelope.event_type}"
                    )
                expected = self._factory.topic_of(type(event))
                if item.topic != expected:
                    raise Misrouted(f"{envelope.event_type} belongs on {expected}, not on {item.topic}")
                owner = owners.get(item.topic) if owners is not None else None
                if owner is not None and envelope.source != owner:
                    raise ForeignSource(
                        f"{envelope.event_type} from source {_printable(envelope.source)!r} on {item.topic}, "
                        f"which only {owner} publishes"
                    )
            except TransientError:
                raise  # the registry is away: the batch waits for it
            except PoisonMessage as exc:
                item.poison = exc
                continue
            except Exception as exc:  # anything else a hostile message provokes is its own doing too
                item.poison = UndecodableMessage(f"message could not be read: {exc!r}")
                continue
            item.envelope, item.event = envelope, event

    def _skipped(self, item: Inbound, event_type: str, reason: str) -> None:
        item.committed = True  # nothing to do for it: its offset is committed with the batch
        self._m_skipped.labels(self._s.group, event_type, reason).inc()

    def _handle_in_one_transaction(self, items: list[Inbound]) -> None:
        todo = []
        for item in items:
            if item.event is None or item.poison is not None or item.committed:
                continue
            if item.envelope.event_type in self._handlers:  # type: ignore[union-attr]
                todo.append(item)
            else:  # no event_type header said so: known only once decoded
                self._skipped(item, item.envelope.event_type, "not-handled")  # type: ignore[union-attr]
        if todo:
            self._batch.run(todo)

    def _send_dead_letters(self, items: list[Inbound]) -> None:
        letters = [i for i in items if i.poison is not None and not i.dead_lettered]
        if not letters:
            return
        sent, problem = self._dead_letters.send(
            [Failure(i.msg, i.poison, max(1, i.attempts)) for i in letters]  # type: ignore[arg-type]
        )
        for index in sent:
            item = letters[index]
            item.dead_lettered = True  # sent: a retry of this batch must not send it again
            self._log_dead_letter(item)
        if problem is not None:
            raise TransientError(problem)

    def _log_dead_letter(self, item: Inbound) -> None:
        headers, poison = item.headers, item.poison
        assert poison is not None
        with message_context(
            event_id=_printable(header(headers, EVENT_ID)),
            event_type=item.routing.event_type,
            correlation_id=_printable(header(headers, CORRELATION_ID)),
            causation_id=_printable(header(headers, CAUSATION_ID)),
            trace_id=trace_id_of(item.routing.traceparent),
        ):
            log.error(
                "dead-lettered %s[%d]@%d: %s: %s",
                item.topic,
                item.partition,
                item.offset,
                poison.kind,
                poison,
            )
        metrics.DEAD_LETTERED.labels(self._s.group, poison.kind).inc()

    def _commit_offsets(self, items: list[Inbound]) -> None:
        """Store the batch's offsets, for librdkafka's own thread to commit (consumer_config): a commit
        request per batch was a large share of the broker's work. A late or lost commit only means
        redelivery, which the inbox absorbs."""
        last: dict[tuple[str, int], int] = {}
        for item in items:
            key = (item.topic, item.partition)
            last[key] = max(last.get(key, -1), item.offset)
        if last:
            try:
                offsets = [TopicPartition(t, p, o + 1) for (t, p), o in last.items()]
                self._consumer.store_offsets(offsets=offsets)
            except KafkaException as exc:  # e.g. a partition lost meanwhile: its new owner skips them
                log.warning("offsets not stored, the batch will be redelivered and skipped: %s", exc)

    # -- group membership -------------------------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.assigned |= {(p.topic, p.partition) for p in partitions}
        log.info("assigned %s", sorted(f"{p.topic}[{p.partition}]" for p in partitions))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Called inside poll/consume, between batches or during a retry's wait: drop what we held of them.
        revoked = {(p.topic, p.partition) for p in partitions}
        self._revoked |= revoked
        self.assigned -= revoked
        log.info("revoked %s", sorted(f"{t}[{p}]" for t, p in revoked))

    def _report_lag(self) -> None:
        # Positions and high watermarks are both known locally: no broker round trip on this thread.
        try:
            positions = self._consumer.position(self._consumer.assignment())
        except KafkaException as exc:  # lag is informative only; never let it stop consumption
            log.debug("lag not available: %s", exc)
            return
        for tp in positions:
            _, high = self._consumer.get_watermark_offsets(tp, cached=True)
            if high is not None and high >= 0:
                position = tp.offset if tp.offset >= 0 else 0
                metrics.CONSUMER_LAG.labels(self._s.group, tp.topic, str(tp.partition)).set(
                    max(0, high - position)
                )

    def _close(self) -> None:
        try:
            self._consumer.close()  # commits the offsets stored since the last commit, leaves the group
        finally:
            self._dlq.flush(10)


def _printable(value: str | None) -> str | None:
    """A header as a log line may quote it: anyone could have written it."""
    return value if value is None or len(value) <= 64 else f"{value[:32]}... ({len(value)} chars)"
