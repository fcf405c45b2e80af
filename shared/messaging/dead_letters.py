"""Dead letters: the original message, unchanged, plus headers saying where it came from and why it failed.

One dead-letter topic per consuming service. Replaying a dead letter sends the original bytes back to
the original topic with a header naming the one consumer group that failed it: every other group
ignores it there, so it reaches that consumer and only that one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from confluent_kafka import Message

from shared.messaging.headers import KafkaHeaders

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
# On a replayed message: the only consumer group that should handle it.
REPLAY_GROUP = "dlt_replay_group"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | str]]


def original_headers(headers: KafkaHeaders) -> list[tuple[str, bytes | str]]:
    """The message's own headers, without any dead-letter or replay headers of an earlier round."""
    return [(k, v if v is not None else b"") for k, v in headers or () if not k.startswith(PREFIX)]


def dead_letter(msg: Message, group: str, dlt_topic: str, error: BaseException, attempts: int) -> DeadLetter:
    _, timestamp = msg.timestamp()
    kind = getattr(error, "kind", "error")
    text = str(error) or type(error).__name__
    cause = getattr(error, "cause", None) or error
    return DeadLetter(
        topic=dlt_topic,
        key=msg.key(),
        value=msg.value(),
        headers=[
            *original_headers(msg.headers()),
            (ORIGINAL_TOPIC, msg.topic() or ""),
            (ORIGINAL_PARTITION, str(msg.partition())),
            (ORIGINAL_OFFSET, str(msg.offset())),
            (ORIGINAL_TIMESTAMP, str(timestamp)),
            (CONSUMER_GROUP, group),
            (ERROR_CLASS, f"{type(cause).__module__}.{type(cause).__qualname__}"),
            (ERROR_KIND, kind),
            (ERROR_MESSAGE, text[:4000]),
            (ATTEMPTS, str(attempts)),
            (FAILED_AT, datetime.now(UTC).isoformat()),
        ],
    )


def replay_of(dead: Message) -> DeadLetter:
    """What to produce to send a dead letter back to the consumer group that failed it."""
    headers = dict((k, v) for k, v in dead.headers() or ())
    topic = (headers.get(ORIGINAL_TOPIC) or b"").decode()
    group = (headers.get(CONSUMER_GROUP) or b"").decode()
    if not topic or not group:
        raise ValueError("not a dead letter: it has no original topic or consumer group header")
    return DeadLetter(
        topic, dead.key(), dead.value(), [*original_headers(dead.headers()), (REPLAY_GROUP, group)]
    )
