"""One order is one trace in Jaeger, with spans from all four services."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import httpx

TIMELINE_HEARS = (
    "OrderPlaced", "PaymentCompleted", "StockReserved", "ShipmentCreated", "OrderCompleted", "StockShipped",
)  # fmt: skip
# Who hears what of a completed order: one consumer span each, all in the order's one trace.
EXPECTED_PROCESSED = Counter(
    {
        ("order", "OrderPlaced"): 1,
        ("order", "PaymentCompleted"): 1,
        ("order", "StockReserved"): 1,
        ("order", "ShipmentCreated"): 1,
        ("order", "StockShipped"): 1,
        ("payment", "OrderPlaced"): 1,
        ("inventory", "OrderPlaced"): 1,
        ("inventory", "PaymentCompleted"): 1,
        ("inventory", "ShipmentCreated"): 1,
        ("shipping", "OrderPlaced"): 1,
        ("shipping", "StockReserved"): 1,
        # The timeline read model (shopctl's) records every event of the saga.
        **{("timeline", e): 1 for e in TIMELINE_HEARS},
    }
)


def processed(trace: dict[str, Any]) -> Counter[tuple[str, str]]:
    """(service, event type) of each consumer span in the trace."""
    return Counter(
        (trace["processes"][s["processID"]]["serviceName"], _tag(s, "shop.event_type"))
        for s in trace["spans"]
        if s["operationName"].startswith("process ")
    )


def _tag(span: dict[str, Any], key: str) -> str:
    return next(t["value"] for t in span["tags"] if t["key"] == key)


def test_one_order_is_one_trace_across_the_four_services(
    settings, storefront, tap, customer, sku, tracer_provider
):
    tracer = tracer_provider.get_tracer("storefront")
    with tracer.start_as_current_span("checkout") as root:
        order, _ = storefront.place(customer, [(sku, 1, "1.00")])
    trace_id = format(root.get_span_context().trace_id, "032x")
    tracer_provider.force_flush()  # the storefront's own spans: checkout, create storefront.events
    events = tap.wait_terminal(order.order_id)
    assert all(e["traceparent"].split("-")[1] == trace_id for e in events), "every event carries the trace"

    deadline = time.monotonic() + 60  # spans are exported in batches, every few seconds
    while True:
        response = httpx.get(f"{settings.jaeger_query_url}/api/traces/{trace_id}", timeout=5)
        data = response.json().get("data") if response.status_code == 200 else None
        if data:
            trace = data[0]
            operations = {s["operationName"] for s in trace["spans"]}
            if "checkout" in operations and processed(trace) == EXPECTED_PROCESSED:
                break
        assert time.monotonic() < deadline, f"trace {trace_id} incomplete: {data and processed(trace)}"
        time.sleep(0.5)

    spans = {s["spanID"]: s for s in trace["spans"]}
    # Every span but the root has its parent in the same trace: one tree, not fragments.
    for span in spans.values():
        parents = [r["spanID"] for r in span["references"] if r["refType"] == "CHILD_OF"]
        assert span["operationName"] == "checkout" or (parents and parents[0] in spans), span["operationName"]
