"""OpenTelemetry: one tracer provider per process, W3C trace context carried in Kafka headers."""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterator, MutableMapping
from contextlib import AbstractContextManager, contextmanager
from uuid import UUID

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

log = logging.getLogger("shop.consumer")

_propagator = TraceContextTextMapPropagator()
tracer = trace.get_tracer("shop.messaging")
TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"

# The unsampled fast path: a message whose trace was not sampled where it started gets no spans
# (nothing would be recorded); its traceparent is forwarded as it is to what its handler emits, so the
# trace id still runs through the whole saga. With 10% sampling that is nine messages in ten.
_forwarded: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "shop_forwarded_traceparent", default=None
)


def is_sampled(traceparent: str) -> bool:
    """The sampled flag of a well-formed W3C traceparent (version-traceid-spanid-flags)."""
    return bool(int(traceparent[-2:], 16) & 1)


class forwarding:
    """Inside, outgoing messages carry this traceparent; gives the trace id for the logs.

    A class, not a generator-based context manager: it is entered for most messages."""

    __slots__ = ("_token", "_traceparent")

    def __init__(self, traceparent: str) -> None:
        self._traceparent = traceparent

    def __enter__(self) -> str | None:
        self._token = _forwarded.set(self._traceparent)
        return trace_id_of(self._traceparent)

    def __exit__(self, *_: object) -> None:
        _forwarded.reset(self._token)


def forwarded_traceparent() -> str | None:
    return _forwarded.get()


def configure_tracing(
    service_name: str, otlp_endpoint: str, sampling_ratio: float, export_timeout: float = 10
) -> TracerProvider:
    """Spans go to Jaeger over OTLP; a trace's sampling is decided once, where it starts."""
    provider = TracerProvider(
        resource=Resource.create({"service.name": service_name}),
        sampler=ParentBased(TraceIdRatioBased(sampling_ratio)),
    )
    exporter = OTLPSpanExporter(endpoint=otlp_endpoint, insecure=True, timeout=export_timeout)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider


def inject_into(carrier: MutableMapping[str, str]) -> None:
    """Write the current context (traceparent, tracestate) into a header dict."""
    _propagator.inject(carrier)


def consuming(
    *,
    topic: str,
    partition: int,
    offset: int,
    group: str,
    event_id: str,
    event_type: str,
    correlation_id: str,
    causation_id: UUID | None,
    order_id: UUID,
    traceparent: str | None,
    tracestate: str | None,
    trace_problem: str | None,
) -> AbstractContextManager[str | None]:
    """The trace a message is handled in; gives its trace id. A message of an unsampled trace gets no
    span and forwards its traceparent; any other gets a consumer span, child of the one it carried
    (validated: routing.py), or the root of a new trace.

    Every span of the runtime names its order (`shop.order_id`, what `shopctl trace` finds an order's
    trace by) and its event (`messaging.message.id`, `shop.event_type`); an event caused by another
    names that one's id too (`shop.causation_id`, the envelope's causation id), so that the trace
    reads as the saga's chain of events."""
    if traceparent is not None and not is_sampled(traceparent):
        return forwarding(traceparent)
    # Attributes given at the start: the sampler sees them, and they are checked once, not twice.
    attributes = {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.destination.name": topic,
        "messaging.consumer.group.name": group,
        "messaging.message.id": event_id,
        "messaging.destination.partition.id": str(partition),
        "messaging.kafka.offset": offset,
        "shop.event_type": event_type,
        "shop.correlation_id": correlation_id,
        "shop.order_id": str(order_id),
    }
    if causation_id is not None:
        attributes["shop.causation_id"] = str(causation_id)
    return _consumer_span(f"process {topic}", context_of(traceparent, tracestate), attributes, trace_problem)


@contextmanager
def _consumer_span(
    name: str, context: otel_context.Context, attributes: dict[str, str | int], trace_problem: str | None
) -> Iterator[str | None]:
    with tracer.start_as_current_span(name, context=context, kind=SpanKind.CONSUMER, attributes=attributes):
        if trace_problem is not None:
            log.warning("a new trace starts: %s", trace_problem)
        yield current_trace_id()


def context_of(traceparent: str | None, tracestate: str | None) -> otel_context.Context:
    """The context to continue: from header values already validated (routing.py); none starts anew."""
    if traceparent is None:
        return otel_context.Context()
    carrier = {TRACEPARENT: traceparent}
    if tracestate:
        carrier[TRACESTATE] = tracestate
    return _propagator.extract(carrier)


def trace_id_of(traceparent: str | None) -> str | None:
    """The trace id in a W3C traceparent header (version-traceid-spanid-flags), if well-formed."""
    if traceparent is None or len(traceparent) != 55:
        return None
    return traceparent[3:35]


def current_trace_id() -> str | None:
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None


def traceparent_in_scope() -> str | None:
    """The traceparent of the message being handled, sampled or not: what continues its trace later
    (a deadline that fires after the message is long gone)."""
    forwarded = _forwarded.get()
    if forwarded:
        return forwarded
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get(TRACEPARENT)


def continuing(
    traceparent: str | None, name: str, attributes: dict[str, str]
) -> AbstractContextManager[object]:
    """Inside, outgoing messages continue the trace of `traceparent`, which was recorded earlier: a span
    of its own, child of it, if it was sampled; else forwarded as it is. None starts a trace."""
    if traceparent is not None and not is_sampled(traceparent):
        return forwarding(traceparent)
    return tracer.start_as_current_span(name, context=context_of(traceparent, None), attributes=attributes)


def trace_id_in_scope() -> str | None:
    """The trace id of the message being handled, sampled or not."""
    forwarded = _forwarded.get()
    return trace_id_of(forwarded) if forwarded else current_trace_id()
