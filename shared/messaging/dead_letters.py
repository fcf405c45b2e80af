"""Dead letters: the original message, unchanged, plus headers saying where it came from and why it failed.

One dead-letter topic per consuming service. A letter the broker will not take as it is (the original
was near the size limit, or its headers were) goes as a stub: no body, the original's position, size
and sha256, the headers that fit and the error. The body stays on the original topic, where a replay
reads it from. Replaying a dead letter sends the original bytes back to the original topic with a
header naming the one consumer group that failed it: every other group ignores it there, so it
reaches that consumer and only that one.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from shared.messaging.headers import KafkaHeaders
from shared.messaging.kafka_clients import produce

log = logging.getLogger("shop.dead_letters")

PREFIX = "dlt_"
ORIGINAL_TOPIC = "dlt_original_topic"
ORIGINAL_PARTITION = "dlt_original_partition"
ORIGINAL_OFFSET = "dlt_original_offset"
ORIGINAL_TIMESTAMP = "dlt_original_timestamp"
CONSUMER_GROUP = "dlt_consumer_group"
ERROR_CLASS = "dlt_error_class"
ERROR_KIND = "dlt_error_kind"
ERROR_MESSAGE = "dlt_error_message"
ATTEMPTS = "dlt_attempts"
FAILED_AT = "dlt_failed_at"
# On a stub: "true"; the body's size and digest, and how many of its headers did not fit.
STUB = "dlt_stub"
ORIGINAL_SIZE = "dlt_original_size"
ORIGINAL_SHA256 = "dlt_original_sha256"
HEADERS_DROPPED = "dlt_headers_dropped"
# On a replayed message: the only consumer group that should handle it.
REPLAY_GROUP = "dlt_replay_group"

# What a stub keeps of the original: far below any broker's limit, enough for every header we write.
_STUB_HEADER_BUDGET = 16 * 1024
_STUB_KEY_MAX = 1024
_ERROR_MESSAGE_MAX = 4000
_DELIVERY_TIMEOUT = 30.0

Headers = list[tuple[str, bytes | str]]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers


@dataclass(frozen=True, slots=True)
class Failure:
    """A message a consumer group gives up on, and why."""

    msg: Message
    error: BaseException
    attempts: int


def original_headers(headers: KafkaHeaders) -> Headers:
    """The message's own headers, without any dead-letter or replay headers of an earlier round."""
    return [(k, v if v is not None else b"") for k, v in headers or () if not k.startswith(PREFIX)]


def dead_letter(msg: Message, group: str, dlt_topic: str, error: BaseException, attempts: int) -> DeadLetter:
    """The whole letter: the original key, bytes and headers, and why."""
    return DeadLetter(
        dlt_topic,
        msg.key(),
        msg.value(),
        [*original_headers(msg.headers()), *_why(msg, group, error, attempts)],
    )


def stub_of(msg: Message, group: str, dlt_topic: str, error: BaseException, attempts: int) -> DeadLetter:
    """A letter without the body, small whatever the original was."""
    value = msg.value() or b""
    kept: Headers = []
    budget, dropped = _STUB_HEADER_BUDGET, 0
    for name, header_value in original_headers(msg.headers()):
        size = len(name) + len(header_value)
        if size <= budget:
            kept.append((name, header_value))
            budget -= size
        else:
            dropped += 1
    key = msg.key()
    return DeadLetter(
        dlt_topic,
        key if key is None or len(key) <= _STUB_KEY_MAX else None,
        None,
        [
            *kept,
            *_why(msg, group, error, attempts),
            (STUB, "true"),
            (ORIGINAL_SIZE, str(len(value))),
            (ORIGINAL_SHA256, hashlib.sha256(value).hexdigest()),
            (HEADERS_DROPPED, str(dropped)),
        ],
    )


def _why(msg: Message, group: str, error: BaseException, attempts: int) -> Headers:
    _, timestamp = msg.timestamp()
    cause = getattr(error, "cause", None) or error
    return [
        (ORIGINAL_TOPIC, msg.topic() or ""),
        (ORIGINAL_PARTITION, str(msg.partition())),
        (ORIGINAL_OFFSET, str(msg.offset())),
        (ORIGINAL_TIMESTAMP, str(timestamp)),
        (CONSUMER_GROUP, group),
        (ERROR_CLASS, f"{type(cause).__module__}.{type(cause).__qualname__}"),
        (ERROR_KIND, getattr(error, "kind", "error")),
        (ERROR_MESSAGE, (str(error) or type(error).__name__)[:_ERROR_MESSAGE_MAX]),
        (ATTEMPTS, str(attempts)),
        (FAILED_AT, datetime.now(UTC).isoformat()),
    ]


LetterForm = Callable[[Message, str, str, BaseException, int], DeadLetter]


class DeadLetterSender:
    """Sends a batch's dead letters and waits for the broker: whole where it will take them, else stubs."""

    def __init__(self, producer: Producer, group: str, topic: str) -> None:
        self._producer = producer
        self._group = group
        self._topic = topic

    def send(self, failures: Sequence[Failure]) -> tuple[list[int], str | None]:
        """Indexes of the failures acknowledged, and what kept the others (an outage), if any."""
        outcome: dict[int, KafkaError | None] = {}
        self._produce(failures, dead_letter, list(range(len(failures))), outcome)
        too_big = [i for i, err in outcome.items() if err is not None and not _retriable(err)]
        if too_big:
            for i in too_big:
                log.warning(
                    "dead letter of %s[%d]@%d refused as it is (%s): sent as a stub",
                    failures[i].msg.topic(), failures[i].msg.partition(), failures[i].msg.offset(),
                    outcome[i].str(),  # type: ignore[union-attr]
                )  # fmt: skip
            self._produce(failures, stub_of, too_big, outcome)
        sent = [i for i, err in outcome.items() if err is None]
        problems = [err for err in outcome.values() if err is not None]
        return sent, (
            f"dead-letter topic {self._topic} did not take them: {problems[0].str()}" if problems else None
        )

    def _produce(
        self,
        failures: Sequence[Failure],
        form: LetterForm,
        indexes: Sequence[int],
        outcome: dict[int, KafkaError | None],
    ) -> None:
        for i in indexes:
            f = failures[i]
            letter = form(f.msg, self._group, self._topic, f.error, f.attempts)
            # Until its delivery report says otherwise.
            outcome[i] = KafkaError(KafkaError._MSG_TIMED_OUT, "not acknowledged in time")

            def delivered(err: KafkaError | None, _m: object, i: int = i) -> None:
                outcome[i] = err

            try:
                produce(
                    self._producer, letter.topic, value=letter.value, key=letter.key, headers=letter.headers,
                    on_delivery=delivered,
                )  # fmt: skip
            except KafkaException as exc:  # refused before sending: too large, or not allowed
                outcome[i] = exc.args[0]
        self._producer.flush(_DELIVERY_TIMEOUT)


def _retriable(err: KafkaError) -> bool:
    """Would the same letter go through later? A size or validity refusal never will."""
    return err.code() not in (
        KafkaError.MSG_SIZE_TOO_LARGE,
        KafkaError.RECORD_LIST_TOO_LARGE,
        KafkaError.INVALID_RECORD,
        KafkaError._INVALID_ARG,
    )


def is_stub(headers: KafkaHeaders) -> bool:
    return any(k == STUB and v == b"true" for k, v in headers or ())


def replay_of(dead: Message, original: Message | None = None) -> DeadLetter:
    """What to produce to send a dead letter back to the consumer group that failed it.

    A stub needs its original, read from where the stub says it is: its digest must match."""
    headers = {k: (v or b"").decode("utf-8", "replace") for k, v in dead.headers() or ()}
    topic = headers.get(ORIGINAL_TOPIC, "")
    group = headers.get(CONSUMER_GROUP, "")
    if not topic or not group:
        raise ValueError("not a dead letter: it has no original topic or consumer group header")
    if not is_stub(dead.headers()):
        return DeadLetter(
            topic, dead.key(), dead.value(), [*original_headers(dead.headers()), (REPLAY_GROUP, group)]
        )
    if original is None:
        raise ValueError("a stub: its body is on the original topic, read it from there")
    partition, offset = headers.get(ORIGINAL_PARTITION, "?"), headers.get(ORIGINAL_OFFSET, "?")
    where = f"{topic}[{partition}]@{offset}"
    digest = hashlib.sha256(original.value() or b"").hexdigest()
    if (
        original.topic() != topic
        or str(original.partition()) != partition
        or str(original.offset()) != offset
        or digest != headers.get(ORIGINAL_SHA256)
    ):
        raise ValueError(f"the message at {where} is not the one this stub describes (sha256 differs)")
    return DeadLetter(
        topic,
        original.key(),
        original.value(),
        [*original_headers(original.headers()), (REPLAY_GROUP, group)],
    )
