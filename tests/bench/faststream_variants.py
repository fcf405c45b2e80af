"""`make bench-core`'s FastStream variants: the same work as the runtime's (b), done the FastStream way.

FastStream (faststream[confluent]: the same confluent-kafka client as ours) as its documentation shows it:
an async subscriber, AckPolicy.ACK for at-least-once (the offset is committed after the handler
returned, so after its database commit), a codec for the wire format, its OpenTelemetry middleware on
our tracer provider (so tracing costs it what it costs (b)), its per-message logging off (`logger=None`,
as our runtime logs nothing per message), one psycopg AsyncConnection opened at start-up (a handler
runs one message or one batch at a time: a pool would only add a check-out).
(f1) one message at a time, one transaction per message: claim its event id (a duplicate is skipped),
     the trivial handler, its event into the outbox;
(f2) batch=True with max_records = our batch size, one transaction per batch, set-based as (b) does it:
     the claim and the outbox rows one statement each.
Decoding and validation go through our EventCodec, the emitted event through our MessageFactory, into
tables made from our own definitions (same indexes and trigger): what differs is the framework's loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from faststream.confluent import KafkaBroker, Topic
from faststream.confluent.opentelemetry import KafkaTelemetryMiddleware
from faststream.middlewares import AckPolicy
from faststream.security import SASLScram256, SASLScram512
from opentelemetry.sdk.trace import TracerProvider
from pydantic_core import to_json

from shared.contracts import Envelope, OrderPlaced
from shared.messaging.codec import EventCodec
from shared.messaging.publishing import MessageFactory

# What a FastStream user writes for the handled-event check and the outbox, one message at a time.
_CLAIM_ONE = (
    "INSERT INTO processed_events (consumer_group, event_id, event_type) VALUES (%s, %s, %s) "
    "ON CONFLICT DO NOTHING"
)
_OUTBOX_ONE = (
    "INSERT INTO outbox (event_id, event_type, topic, message_key, payload, headers) "
    "VALUES (%s, %s, %s, %s, %s, %s::jsonb)"
)
# And set-based, a batch at a time: the same two statements as the runtime's (claim and outbox).
_CLAIM_MANY = (
    "WITH claimed AS (INSERT INTO processed_events (consumer_group, event_id, event_type) "
    "SELECT %b, t.event_id, t.event_type FROM unnest(%b::uuid[], %b::text[]) AS t(event_id, event_type) "
    "ON CONFLICT DO NOTHING RETURNING event_id) "
    "SELECT DISTINCT t.event_id FROM unnest(%b::uuid[]) AS t(event_id) "
    "WHERE t.event_id NOT IN (SELECT event_id FROM claimed)"
)
_OUTBOX_MANY = (
    "INSERT INTO outbox (event_id, event_type, topic, message_key, payload, headers) "
    "SELECT i, t, d, k, p, h::jsonb FROM unnest(%b::uuid[], %b::text[], %b::text[], %b::text[], "
    "%b::bytea[], %b::text[]) AS r(i, t, d, k, p, h)"
)


@dataclass(frozen=True, slots=True)
class Incoming:
    """What the codec hands the handler: the envelope and the validated event."""

    envelope: Envelope
    event: OrderPlaced


class RegistryCodec:
    """FastStream's codec interface over our EventCodec: Confluent wire format, registry schemas."""

    def __init__(self, codec: EventCodec, on_first: Callable[[], None]) -> None:
        self._codec = codec
        self._on_first = on_first

    async def decode(self, msg: Any) -> Incoming:
        self._on_first()
        return Incoming(*self._codec.decode(msg.body))  # type: ignore[arg-type]

    async def decode_batch(self, msg: Any) -> list[Incoming]:
        self._on_first()
        decode = self._codec.decode
        return [Incoming(*decode(body)) for body in msg.body]  # type: ignore[arg-type]

    async def encode(self, msg: Any, serializer: Any = None) -> tuple[bytes, str | None]:
        raise NotImplementedError("the bench publishes nothing through FastStream")

    async def encode_batch(
        self, msgs: Sequence[Any], serializer: Any = None
    ) -> list[tuple[bytes, str | None]]:
        raise NotImplementedError("the bench publishes nothing through FastStream")


def _security(kafka: Mapping[str, str]) -> SASLScram512 | SASLScram256:
    """Our client settings (Settings.kafka_client) in FastStream's terms: the same SCRAM login."""
    scram = SASLScram256 if kafka["sasl.mechanism"] == "SCRAM-SHA-256" else SASLScram512
    return scram(
        username=kafka["sasl.username"],
        password=kafka["sasl.password"],
        use_ssl=kafka["security.protocol"] == "SASL_SSL",  # else SASL_PLAINTEXT
    )


def _broker(kafka: Mapping[str, str], provider: TracerProvider) -> KafkaBroker:
    # FastStream takes no ssl_context for confluent-kafka: the CA goes in as librdkafka's own setting.
    ca = {"ssl.ca.location": kafka["ssl.ca.location"]} if "ssl.ca.location" in kafka else None
    return KafkaBroker(
        kafka["bootstrap.servers"],
        security=_security(kafka),
        config=ca,
        logger=None,
        middlewares=(KafkaTelemetryMiddleware(tracer_provider=provider),),
    )


async def _run(broker: KafkaBroker, done: asyncio.Event) -> None:
    await broker.start()
    try:
        await done.wait()
    finally:
        await broker.stop()


async def _check(conn: psycopg.AsyncConnection, group: str, events: int) -> None:
    """The work was done: every event claimed, each with its outbox row (a message or two handled after
    the last timed one, before the broker stopped, count too)."""
    cur = await conn.execute(
        "SELECT (SELECT count(*) FROM processed_events WHERE consumer_group = %s), "
        "(SELECT count(*) FROM outbox)",
        (group,),
    )
    claimed, rows = await cur.fetchone()  # type: ignore[misc]
    assert claimed == rows >= events, f"{claimed} claimed, {rows} outbox rows, {events} events"


def per_message(
    *, kafka: Mapping[str, str], topic: str, dsn: str, codec: EventCodec, factory: MessageFactory,
    provider: TracerProvider, handler: Callable[..., list], events: int, clock: Any, group: str,
) -> Any:  # fmt: skip
    """(f1): returns clock.stop(events) taken the moment the last event's transaction committed."""

    async def main() -> Any:
        broker = _broker(kafka, provider)
        done = asyncio.Event()
        result: list[Any] = []
        seen = 0
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:

            @broker.subscriber(
                Topic(topic, declare=False), group_id=group, auto_offset_reset="earliest",
                ack_policy=AckPolicy.ACK, codec=RegistryCodec(codec, clock.start),
            )  # fmt: skip
            async def on_order_placed(incoming: Incoming) -> None:
                nonlocal seen
                envelope = incoming.envelope
                async with conn.transaction():
                    claimed = await conn.execute(_CLAIM_ONE, (group, envelope.event_id, envelope.event_type))
                    if claimed.rowcount == 1:  # else handled before: nothing more to do
                        for e in handler(incoming.event, None, envelope):
                            m = factory.message(e, envelope.correlation_id, envelope.event_id)
                            await conn.execute(
                                _OUTBOX_ONE,
                                (m.event_id, m.event_type, m.topic, m.key, m.payload,
                                 to_json(m.headers).decode()),
                            )  # fmt: skip
                seen += 1
                if seen == events:
                    result.append(clock.stop(seen))
                    done.set()

            await _run(broker, done)
            await _check(conn, group, result[0].events)
        return result[0]

    return asyncio.run(main())


def batched(
    *, kafka: Mapping[str, str], topic: str, dsn: str, codec: EventCodec, factory: MessageFactory,
    provider: TracerProvider, handler: Callable[..., list], events: int, clock: Any, group: str,
    batch_size: int,
) -> Any:  # fmt: skip
    """(f2): returns clock.stop(events) taken the moment the last batch's transaction committed."""

    async def main() -> Any:
        broker = _broker(kafka, provider)
        done = asyncio.Event()
        result: list[Any] = []
        seen = 0
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:

            @broker.subscriber(
                Topic(topic, declare=False), group_id=group, auto_offset_reset="earliest",
                ack_policy=AckPolicy.ACK, codec=RegistryCodec(codec, clock.start),
                batch=True, max_records=batch_size,
            )  # fmt: skip
            async def on_order_placed(batch: list[Incoming]) -> None:
                nonlocal seen
                ids = [i.envelope.event_id for i in batch]
                types = [i.envelope.event_type for i in batch]
                async with conn.transaction():
                    cur = await conn.execute(_CLAIM_MANY, (group, ids, types, ids))
                    handled_before = {row[0] for row in await cur.fetchall()}
                    out = []
                    for incoming in batch:
                        envelope = incoming.envelope
                        if envelope.event_id in handled_before:
                            continue
                        handled_before.add(envelope.event_id)  # a second copy in the batch too
                        for e in handler(incoming.event, None, envelope):
                            out.append(factory.message(e, envelope.correlation_id, envelope.event_id))
                    if out:
                        await conn.execute(
                            _OUTBOX_MANY,
                            ([m.event_id for m in out], [m.event_type for m in out], [m.topic for m in out],
                             [m.key for m in out], [m.payload for m in out],
                             [to_json(m.headers).decode() for m in out]),
                        )  # fmt: skip
                seen += len(batch)
                if seen >= events and not done.is_set():
                    result.append(clock.stop(seen))
                    done.set()

            await _run(broker, done)
            await _check(conn, group, result[0].events)
        return result[0]

    return asyncio.run(main())
