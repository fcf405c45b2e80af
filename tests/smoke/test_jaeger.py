"""Jaeger receives spans over OTLP and serves them back from its query API."""

from __future__ import annotations

import time

import httpx
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor


def test_a_span_sent_over_otlp_is_read_back_from_jaeger(settings, unique):
    service = f"smoke-{unique}"
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(settings.otel_exporter_otlp_endpoint, insecure=True))
    )
    tracer = provider.get_tracer("smoke")
    with tracer.start_as_current_span("parent") as parent, tracer.start_as_current_span("child"):
        trace_id = format(parent.get_span_context().trace_id, "032x")
    provider.shutdown()

    # Jaeger writes in batches: poll until the trace is there.
    deadline = time.monotonic() + 30
    while True:
        response = httpx.get(f"{settings.jaeger_query_url}/api/traces/{trace_id}", timeout=5)
        if response.status_code == 200 and response.json().get("data"):
            break
        assert time.monotonic() < deadline, f"trace {trace_id} not in Jaeger: {response.status_code}"
        time.sleep(0.5)

    [trace] = response.json()["data"]
    spans = {s["operationName"]: s for s in trace["spans"]}
    assert set(spans) == {"parent", "child"}
    assert spans["child"]["references"][0]["spanID"] == spans["parent"]["spanID"]
    assert {p["serviceName"] for p in trace["processes"].values()} == {service}
