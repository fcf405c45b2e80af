"""`shopctl dlq list|show|replay`: what each consumer could not handle, why, and sending it back."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer
from confluent_kafka import (
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient
from rich.console import Console
from rich.table import Table

from services.shopctl import kafka
from services.shopctl.errors import NOT_FOUND, CliError, bad_input, unavailable
from shared.access import OPERATOR_GROUP_PREFIX
from shared.messaging import dead_letters as dlt
from shared.messaging.headers import as_dict
from shared.messaging.kafka_clients import REFUSALS
from shared.settings import PROCESSES, get_settings
from shared.topics import dead_letter_topic

app = typer.Typer(no_args_is_help=True, help="Dead letters: list them, show one, replay one.")
console = Console()
DLT_TOPICS = [dead_letter_topic(p) for p in PROCESSES]


def _consumer() -> Consumer:
    config = kafka.checked()
    return Consumer({**config, "group.id": f"{OPERATOR_GROUP_PREFIX}dlq", "enable.auto.commit": False})


def _read(topic: str, start: int = 0, end: int | None = None, partition: int = 0) -> list[Message]:
    consumer = _consumer()
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        end = high if end is None else min(end, high)
        start = max(start, low)
        if start >= end:
            return []
        consumer.assign([TopicPartition(topic, partition, start)])
        out: list[Message] = []
        deadline = time.monotonic() + 30
        while len(out) < end - start and time.monotonic() < deadline:
            for msg in consumer.consume(500, 1.0):
                error = msg.error()
                if error is not None and error.code() in REFUSALS:
                    raise unavailable(f"the broker refused reading {topic}: {error.str()}")
                if error is None and msg.offset() < end:
                    out.append(msg)
        return out
    finally:
        consumer.close()


def _position(text: str) -> tuple[str, int]:
    topic, _, offset = text.rpartition(":")
    if topic not in DLT_TOPICS or not offset.isdigit():
        raise bad_input(f"{text!r}: expected DLT_TOPIC:OFFSET with a topic among {', '.join(DLT_TOPICS)}")
    return topic, int(offset)


def _one(position: str) -> Message:
    topic, offset = _position(position)
    found = _read(topic, offset, offset + 1)
    if not found:
        raise CliError(f"no dead letter at {topic}:{offset}", NOT_FOUND)
    return found[0]


def _original_of(stub: Message) -> Message | None:
    """The message a stub stands for, read from where it says; None once the topic no longer has it."""
    h = as_dict(stub.headers())
    try:
        partition, offset = int(h.get(dlt.ORIGINAL_PARTITION, "")), int(h.get(dlt.ORIGINAL_OFFSET, ""))
    except ValueError:
        return None
    topic = h.get(dlt.ORIGINAL_TOPIC, "")
    found = _read(topic, offset, offset + 1, partition) if topic else []
    return found[0] if found else None


def _stub_line(headers: dict[str, str]) -> str:
    return (
        f"a stub: the letter was too large to send whole; the body ({headers.get(dlt.ORIGINAL_SIZE)} bytes, "
        f"sha256 {headers.get(dlt.ORIGINAL_SHA256)}) stays on {headers.get(dlt.ORIGINAL_TOPIC)}"
        f"[{headers.get(dlt.ORIGINAL_PARTITION)}]@{headers.get(dlt.ORIGINAL_OFFSET)}; "
        f"{headers.get(dlt.HEADERS_DROPPED, '0')} of its headers did not fit"
    )


@app.command("list")
def list_(
    topic: Annotated[list[str] | None, typer.Option(help="Dead-letter topic(s); default: all")] = None,
) -> None:
    """Every dead letter: where it came from, which consumer failed it, and why."""
    for t in topic or []:
        if t not in DLT_TOPICS:
            raise bad_input(f"--topic {t!r}: not a dead-letter topic; known: {', '.join(DLT_TOPICS)}")
    table = Table(
        "position", "group", "kind", "original", "event", "error", title="dead letters", title_justify="left"
    )
    count = 0
    for t in topic or DLT_TOPICS:
        for msg in _read(t):
            h = as_dict(msg.headers())
            table.add_row(
                f"{t}:{msg.offset()}",
                h.get(dlt.CONSUMER_GROUP, "?"),
                h.get(dlt.ERROR_KIND, "?") + (" (stub)" if dlt.is_stub(msg.headers()) else ""),
                f"{h.get(dlt.ORIGINAL_TOPIC)}[{h.get(dlt.ORIGINAL_PARTITION)}]@{h.get(dlt.ORIGINAL_OFFSET)}",
                h.get("event_type", "-"),
                h.get(dlt.ERROR_MESSAGE, "")[:80],
            )
            count += 1
    console.print(table if count else "no dead letters")


@app.command()
def show(position: Annotated[str, typer.Argument(help="DLT_TOPIC:OFFSET, as `dlq list` shows it")]) -> None:
    """One dead letter: its error, its original position, its headers and its payload where it decodes.

    A stub's payload is read from the original topic, where it stayed."""
    msg = _one(position)
    headers = as_dict(msg.headers())
    console.print(f"[bold]{position}[/] key={msg.key().decode(errors='replace') if msg.key() else None}")
    for k, v in headers.items():
        console.print(f"  {k}: {v[:200]}{'...' if len(v) > 200 else ''}", highlight=False)
    value = msg.value()
    if dlt.is_stub(msg.headers()):
        console.print(_stub_line(headers), highlight=False)
        original = _original_of(msg)
        if original is None:
            console.print("the original is no longer on its topic (retention): only this stub is left")
            return
        value = original.value()
    # Imported here, not at start-up: every shopctl command pays for what the module imports.
    from shared.messaging.codec import EventCodec, registry_as
    from shared.messaging.errors import PoisonMessage, TransientError

    codec = EventCodec(registry_as(get_settings()))
    try:
        envelope, event = codec.decode(value)
        console.print_json(
            json.dumps({"envelope": envelope.model_dump(mode="json"), **event.model_dump(mode="json")})
        )
    except (PoisonMessage, TransientError) as exc:
        preview = (value or b"")[:64]
        console.print(f"payload does not decode ({exc}); first bytes: {preview!r}", highlight=False)


@app.command()
def replay(
    position: Annotated[str, typer.Argument(help="DLT_TOPIC:OFFSET, as `dlq list` shows it")],
    wait: Annotated[float, typer.Option(help="Seconds to watch what the consumer does with it")] = 30,
) -> None:
    """Send a dead letter back to the one consumer group that failed it, and say what happened.

    A stub is replayed with the original's bytes, read from the original topic."""
    msg = _one(position)
    original = None
    if dlt.is_stub(msg.headers()):
        original = _original_of(msg)
        if original is None:
            raise CliError(f"{position} is a stub and its original is no longer on its topic", NOT_FOUND)
    try:
        again = dlt.replay_of(msg, original)
    except ValueError as exc:
        raise bad_input(f"{position}: {exc}") from exc
    group = dict(again.headers)[dlt.REPLAY_GROUP]
    dlt_topic = _position(position)[0]
    # Where the dead-letter topic ends now: a new letter past it for this message means it failed again.
    probe = _consumer()
    try:
        before = probe.get_watermark_offsets(TopicPartition(dlt_topic, 0), timeout=10)[1]
    finally:
        probe.close()
    from shared.messaging.kafka_clients import producer_config

    # What the broker took once it takes again (plus one small header): its limit decides, not ours.
    producer = Producer({**producer_config(kafka.client()), "message.max.bytes": 2 * 1024 * 1024})
    landed: list[Message] = []
    refused: list[KafkaError] = []
    try:
        producer.produce(
            again.topic,
            value=again.value,
            key=again.key,
            headers=again.headers,
            on_delivery=lambda err, m: refused.append(err) if err is not None else landed.append(m),
        )
    except KafkaException as exc:
        refused.append(exc.args[0])
    producer.flush(30)
    if not landed:
        why = f": {refused[0].str()}" if refused else ""
        raise unavailable(f"the broker did not acknowledge the replay to {again.topic}{why}")
    sent = landed[0]
    console.print(
        f"replayed {position} to {sent.topic()}[{sent.partition()}]@{sent.offset()} for group {group}"
    )
    console.print(_outcome(group, sent, dlt_topic, before, wait))


def _outcome(group: str, sent: Message, dlt_topic: str, before: int, wait: float) -> str:
    """Handled (the group committed past it), dead-lettered again, or not yet."""
    admin = AdminClient(kafka.client())
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        request = ConsumerGroupTopicPartitions(group, [TopicPartition(sent.topic(), sent.partition())])
        committed = admin.list_consumer_group_offsets([request])[group].result(10).topic_partitions[0].offset
        if committed > sent.offset():
            # Committed past it: handled, unless it went to the dead-letter topic again first.
            for letter in _read(dlt_topic, before):
                h = as_dict(letter.headers())
                if (
                    h.get(dlt.ORIGINAL_OFFSET) == str(sent.offset())
                    and h.get(dlt.ORIGINAL_TOPIC) == sent.topic()
                ):
                    why = f"{h.get(dlt.ERROR_KIND)}: {h.get(dlt.ERROR_MESSAGE)}"
                    return f"[red]failed again[/] in {group}: {why}"
            return f"[green]handled[/] by {group}"
        time.sleep(0.5)
    return f"not handled by {group} within {wait:.0f}s: is it running? (`shopctl status`)"
