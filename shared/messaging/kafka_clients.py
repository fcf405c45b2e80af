"""Every Kafka client setting of the runtime, in one place: the consumers', and the producers' (relay,
dead letters, publishers)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, Producer, TopicPartition

from shared.messaging import metrics

log = logging.getLogger("shop.consumer")


# The broker refusing who we are, or what we ask: librdkafka retries these for ever, as errors only.
REFUSALS = frozenset(
    {
        KafkaError._AUTHENTICATION,
        KafkaError.SASL_AUTHENTICATION_FAILED,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.GROUP_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
    }
)


class Refusals:
    """The broker's latest refusal of this process: its login, or an operation its ACLs do not allow.

    Without it a service missing a grant, or given a wrong password, would look healthy while it
    consumes nothing: health reads `recent()`. Fed by every client's error_cb and by the consumer's
    poll errors (a topic it may not read, a group it may not join)."""

    def __init__(self) -> None:
        self._last: tuple[float, str] | None = None

    def error_cb(self, err: KafkaError) -> None:
        if self.note(err):
            log.error("the broker refused us: %s", err.str())
        else:
            log.warning("kafka client error: %s", err.str())

    def note(self, err: KafkaError) -> bool:
        """Remember a refusal; False for any other error."""
        if err.code() not in REFUSALS:
            return False
        self._last = (time.monotonic(), err.str())
        return True

    def recent(self, within: float = 30.0) -> str | None:
        """The latest refusal, if it came in the last `within` seconds."""
        if self._last is None or time.monotonic() - self._last[0] > within:
            return None
        return self._last[1]


@dataclass(frozen=True)
class Fetching:
    """How long the broker holds a consumer's fetch for more data (wait_ms), unless min_bytes came.

    Every fetch answered is a batch for the consumer: its transaction, its outbox rows' relay turn,
    its fetch's share of the broker. The holding time sets how many batches a second a group runs,
    whatever the load (about 80 at 10 ms, from a few orders a second up), and so the most of the
    machine's CPU at light and moderate loads; it is also what a lone message waits at each hop."""

    wait_ms: int
    min_bytes: int


# On a saga's path: a lone message leaves the broker within 10 ms of arriving, at each hop.
PROMPT = Fetching(wait_ms=10, min_bytes=8192)
# Off every saga's path (a read model): a tenth of PROMPT's batches, each up to 100 ms behind. At 100
# orders/s this left the saga's consumers the CPU to run p50 69-89 ms instead of 117-145.
UNHURRIED = Fetching(wait_ms=100, min_bytes=1_000_000)


def consumer_config(
    client: Mapping[str, object], group: str, fetching: Fetching = PROMPT
) -> dict[str, object]:
    """`client`: where the broker is and who this is (Settings.kafka_client)."""
    failed_commits = metrics.COMMIT_FAILURES.labels(group)

    def committed(err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        # A refused commit (e.g. during a rebalance) costs only redelivery: the database has the batch,
        # and its messages come again (to us or the partitions' new owner) to be skipped as handled.
        if err is not None:
            failed_commits.inc()
            log.warning("offset commit failed, the batch will be redelivered and skipped: %s", err)

    return {
        **client,
        "group.id": group,
        # Offsets are stored after the database commit, by us, and committed from librdkafka's own
        # thread once a second (and on revocation and close): a commit request per batch, five
        # consumers at tens of batches a second each, was a large share of the broker's work. A
        # crash loses at most a second of commits: redelivery, which the inbox absorbs.
        "enable.auto.commit": True,
        "enable.auto.offset.store": False,
        "auto.commit.interval.ms": 1_000,
        "auto.offset.reset": "earliest",
        "partition.assignment.strategy": "cooperative-sticky",
        # A crashed instance's partitions move to the others after 10 s, not librdkafka's 45 s default.
        # Heartbeats come from librdkafka's own thread, so a long batch does not count against it.
        "session.timeout.ms": 10_000,
        "heartbeat.interval.ms": 3_000,
        "enable.partition.eof": False,
        # The broker answers a fetch once min_bytes are there or wait_ms passed, instead of at every
        # message (librdkafka's default): at 200 orders/s that took a sixth of the broker's CPU.
        "fetch.wait.max.ms": fetching.wait_ms,
        "fetch.min.bytes": fetching.min_bytes,
        "on_commit": committed,  # commits are asynchronous: their outcome arrives here
    }


def producer_config(client: Mapping[str, object]) -> dict[str, object]:
    return {
        **client,
        "enable.idempotence": True,  # implies acks=all, ordered retries per partition
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "lz4",
        "message.timeout.ms": 30_000,
        # How long a topic missing from the metadata may still be on its way (default 30 s). Topics are
        # provisioned before anything produces and the broker never creates them, so missing is almost
        # always missing for good; a new topic reaches every broker in well under a second. The relay
        # asks for a topic's metadata before its first row; this bounds the rest, a topic deleted after
        # that: below message.timeout.ms, so that it fails as UNKNOWN_TOPIC_OR_PART (a refusal: the row
        # is parked) and not as _MSG_TIMED_OUT (retried forever), and a batch carrying such a row holds
        # the rest up for 5 s, not 30.
        "topic.metadata.propagation.max.ms": 5_000,
    }


def produce(
    producer: Producer,
    topic: str,
    *,
    value: bytes | None,
    key: str | bytes | None,
    headers: Sequence[tuple[str, Any]],
    on_delivery: Callable[[KafkaError | None, Any], None],
) -> None:
    """Queue one message, waiting out a full local queue (deliveries drain it) instead of failing.
    Any other refusal (too large, unknown topic) raises KafkaException for the caller to judge."""
    while True:
        try:
            producer.produce(topic, value=value, key=key, headers=headers, on_delivery=on_delivery)
            return
        except BufferError:
            producer.poll(0.1)
