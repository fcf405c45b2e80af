"""A trace started by a producer continues in the consumer and on into what the consumer emits."""

from __future__ import annotations

import time
from uuid import uuid4

import httpx

from tests.runtime.app import effects
from tests.runtime.support import drain


def test_the_consumer_span_is_a_child_of_the_producer_span(
    consumer_for, settings, database, topics, storefront, unique, tracer_provider
):
    tracer = tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("storefront checkout") as root:
        _, message = storefront.place(correlation_id=uuid4())
    trace_id = format(root.get_span_context().trace_id, "032x")
    assert message.headers["traceparent"].split("-")[1] == trace_id

    consumer = consumer_for(f"g-{unique}")
    drain(consumer, until=lambda: database.count(effects) == 1)
    tracer_provider.force_flush()

    spans = _trace(settings, trace_id, expected=4)
    by_name = {s["operationName"]: s for s in spans}
    create_in = by_name[f"create {topics.inbound}"]
    process_in = by_name[f"process {topics.inbound}"]
    create_out = by_name[f"create {topics.outbound}"]
    assert _parent(create_in) == by_name["storefront checkout"]["spanID"]
    assert _parent(process_in) == create_in["spanID"], "consumer span continues the producer's context"
    assert _parent(create_out) == process_in["spanID"], "what the handler emits belongs to the same trace"
    tags = {t["key"]: t["value"] for t in process_in["tags"]}
    assert tags["messaging.system"] == "kafka"
    assert tags["messaging.operation.type"] == "process"
    assert tags["messaging.consumer.group.name"] == f"g-{unique}"
    assert tags["span.kind"] == "consumer"
    assert tags["messaging.message.id"] == str(message.event_id)


def _parent(span) -> str | None:
    refs = [r for r in span["references"] if r["refType"] == "CHILD_OF"]
    return refs[0]["spanID"] if refs else None


def _trace(settings, trace_id: str, expected: int) -> list[dict]:
    deadline = time.monotonic() + 60  # spans are exported in batches, every few seconds
    while True:
        response = httpx.get(f"{settings.jaeger_query_url}/api/traces/{trace_id}", timeout=5)
        data = response.json().get("data") if response.status_code == 200 else None
        if data and len(data[0]["spans"]) >= expected:
            return data[0]["spans"]
        assert time.monotonic() < deadline, f"trace {trace_id} incomplete in Jaeger"
        time.sleep(0.5)
