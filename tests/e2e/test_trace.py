"""One order is one trace in Jaeger, with spans from all four services."""

from __future__ import annotations

import time

import httpx

from shared.settings import SERVICES


def test_one_order_is_one_trace_across_the_four_services(
    settings, storefront, tap, customer, sku, tracer_provider
):
    tracer = tracer_provider.get_tracer("storefront")
    with tracer.start_as_current_span("checkout") as root:
        order, _ = storefront.place(customer, [(sku, 1, "1.00")])
    trace_id = format(root.get_span_context().trace_id, "032x")
    tracer_provider.force_flush()  # the storefront's own spans: checkout, create order.events
    events = tap.wait_terminal(order.order_id)
    assert all(e["traceparent"].split("-")[1] == trace_id for e in events), "every event carries the trace"

    deadline = time.monotonic() + 30
    while True:
        response = httpx.get(f"{settings.jaeger_query_url}/api/traces/{trace_id}", timeout=5)
        data = response.json().get("data") if response.status_code == 200 else None
        if data:
            trace = data[0]
            services = {trace["processes"][s["processID"]]["serviceName"] for s in trace["spans"]}
            operations = {s["operationName"] for s in trace["spans"]}
            processed = [s for s in trace["spans"] if s["operationName"].startswith("process ")]
            # order, payment, inventory and shipping hear OrderPlaced; order and inventory PaymentCompleted;
            # order and shipping StockReserved; order and inventory ShipmentCreated.
            if set(SERVICES) <= services and "checkout" in operations and len(processed) == 10:
                break
        assert time.monotonic() < deadline, f"trace {trace_id} incomplete: {data and services}"
        time.sleep(0.5)

    spans = {s["spanID"]: s for s in trace["spans"]}
    # Every span but the root has its parent in the same trace: one tree, not fragments.
    for span in spans.values():
        parents = [r["spanID"] for r in span["references"] if r["refType"] == "CHILD_OF"]
        assert span["operationName"] == "checkout" or (parents and parents[0] in spans), span["operationName"]
