"""What the runtime cannot avoid adding to each event, each step timed alone (`make bench-core`).

The bare loop decodes and inserts; the runtime must also validate the record into its contract, build
and encode the event a handler emits, and, for a sampled trace, record and export spans. Timed here
without anything else running, these give the best b/a that a runtime with no other cost could reach.
"""

from __future__ import annotations

import io
import timeit
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import fastavro
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from shared.contracts import Event
from shared.messaging.codec import EventCodec
from shared.messaging.publishing import MessageFactory
from shared.messaging.tracing import forwarding

_UNSAMPLED = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"


@dataclass(frozen=True)
class Floor:
    validate: float  # seconds per event: the runtime's decode and validation, less the bare decode
    emit: float  # one event built, enveloped and encoded (unsampled: no span)
    span: float  # one span started, ended and encoded for OTLP


def _seconds(fn: Callable[[], object], number: int = 5_000) -> float:
    return min(timeit.repeat(fn, number=number, repeat=5)) / number


def measure(codec: EventCodec, payload: bytes, handler: Callable[..., list[Event]]) -> Floor:
    reader = codec.registered(type(codec.decode(payload)[1])).parsed
    body = payload[5:]
    bare = _seconds(lambda: fastavro.schemaless_reader(io.BytesIO(body), reader, None))
    validated = _seconds(lambda: codec.decode(payload))

    envelope, event = codec.decode(payload)
    emitted = handler(event, None, envelope)[0]
    factory = MessageFactory(codec, "bench", lambda _: "bench.floor")

    def emit() -> None:
        with forwarding(_UNSAMPLED):
            factory.message(emitted, envelope.correlation_id, envelope.event_id)

    return Floor(validate=validated - bare, emit=_seconds(emit), span=_span_seconds())


def _span_seconds() -> float:
    kept: list[ReadableSpan] = []

    class Keep(SpanExporter):
        def export(self, spans: object) -> SpanExportResult:
            kept.extend(spans)  # type: ignore[arg-type]
            return SpanExportResult.SUCCESS

    provider = TracerProvider(resource=Resource.create({"service.name": "bench-floor"}))
    provider.add_span_processor(SimpleSpanProcessor(Keep()))
    tracer = provider.get_tracer("bench")
    attributes = {  # as many as the runtime's consumer span carries
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.destination.name": "order.events",
        "messaging.consumer.group.name": "payment",
        "messaging.message.id": str(uuid.uuid4()),
        "messaging.destination.partition.id": "3",
        "messaging.kafka.offset": 1234,
        "shop.event_type": "OrderPlaced",
        "shop.correlation_id": str(uuid.uuid4()),
    }

    def one() -> None:
        with tracer.start_as_current_span("process order.events", attributes=attributes):
            pass

    started_ended = _seconds(one, 2_000)
    batch = kept[:512]
    encoded = _seconds(lambda: encode_spans(batch).SerializeToString(), 10) / len(batch)
    provider.shutdown()
    return started_ended + encoded
