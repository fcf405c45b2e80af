"""One order is one trace in Jaeger, with spans from all four services."""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from typing import Any
from uuid import uuid4

import httpx

from tests.e2e.test_cli import UUID, shopctl

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


# `shopctl trace`: the order's trace read back from Jaeger and drawn as a waterfall.

SAGA_SERVICES = ("shopctl", "order", "payment", "inventory", "shipping", "timeline")
# What each event of a completed order was caused by (the envelope's causation id).
CAUSES = {
    "PaymentCompleted": "OrderPlaced",
    "StockReserved": "PaymentCompleted",
    "ShipmentCreated": "StockReserved",
    "OrderCompleted": "ShipmentCreated",
    "StockShipped": "ShipmentCreated",
}
# A consumer span per hearing, a producer span per event.
SPANS = sum(EXPECTED_PROCESSED.values()) + 1 + len(CAUSES)


def _whole_trace(settings, order_id: str) -> dict[str, Any]:
    """The order's trace once Jaeger holds every span of it, found by the order id the runtime tags
    each span with (`shop.order_id`)."""
    deadline = time.monotonic() + 60  # spans are exported in batches, every few seconds
    while True:
        response = httpx.get(
            f"{settings.jaeger_query_url}/api/traces",
            params={"service": "order", "tags": json.dumps({"shop.order_id": order_id})},
            timeout=5,
        )
        data = response.json().get("data") if response.status_code == 200 else None
        if data:
            trace = data[0]
            services = {p["serviceName"] for p in trace["processes"].values()}
            complete = processed(trace) == EXPECTED_PROCESSED and len(trace["spans"]) == SPANS
            if services == set(SAGA_SERVICES) and complete and len(data) == 1:
                return trace
        assert time.monotonic() < deadline, f"order {order_id}: incomplete: {data and processed(data[0])}"
        time.sleep(0.5)


def place_order(customer: str, sku: str, *, sampling: str):
    """An order placed and ended through shopctl, its trace sampled at `sampling`; (result, order id)."""
    placed = shopctl(
        "order", "place", "--customer", customer, "--item", f"{sku}:1@2.00", "--wait",
        env={"OTEL_TRACES_SAMPLER_ARG": sampling},
    )  # fmt: skip
    assert placed.returncode == 0, placed.stderr
    return placed, re.search(rf"order ({UUID}) placed", placed.stdout)[1]


def test_shopctl_trace_draws_the_orders_trace_with_every_service_and_event(settings, services, customer, sku):
    # Sampling is decided where the trace starts, here: this order is sampled whatever .env says.
    placed, order_id = place_order(customer, sku, sampling="1.0")
    correlation = re.search(rf"correlation id ({UUID})", placed.stdout)[1]
    trace_id = re.search(r"/trace/([0-9a-f]{32})", placed.stdout)[1]
    # The short event ids of the saga as the timeline recorded them (`order place --wait`'s table).
    short = dict(re.findall(r"│ \S+\s+│ (\w+)\s+│ \w+\s+│ ([0-9a-f]{8}) │", placed.stdout))
    assert set(short) == {"OrderPlaced", *CAUSES}, placed.stdout
    assert _whole_trace(settings, order_id)["traceID"] == trace_id

    drawn = shopctl("trace", order_id)
    assert drawn.returncode == 0, drawn.stderr
    out = drawn.stdout
    lines = out.splitlines()
    assert lines[0].startswith(f"order {order_id}, trace {trace_id}: "), lines[0]
    assert "\x1b[" not in out, "no colour when stdout is not a terminal"
    assert "ERROR" not in out, out
    assert max(map(len, lines)) <= 200, "fits the terminal (COLUMNS=200)"
    assert f"/trace/{trace_id}" in lines[-1]
    rows = [line for line in lines if line.endswith("│")]
    assert len(rows) == SPANS, "a row per span"
    # Every service of the saga has rows: the service's name opens the span's label.
    for service in SAGA_SERVICES:
        assert any(re.match(rf"\s*[\d.]+\s+[\d.]+\s+{service} (process|create) ", r) for r in rows), service
    # The first row is shopctl's, the start of the trace; each span is indented below its parent.
    assert re.match(r"\s*0\.0\s+[\d.]+\s+shopctl create storefront\.events\s+sent OrderPlaced", rows[0])
    assert re.search(r"^\s*[\d.]+\s+[\d.]+\s{4}payment process storefront\.events", out, re.M)
    # Each event sent once, by its owner, with the event that caused it: the envelope's causation.
    assert f"sent OrderPlaced {short['OrderPlaced']}" in out
    for event, cause in CAUSES.items():
        sent = [r for r in rows if f"sent {event} {short[event]}" in r]
        assert len(sent) == 1, (event, out)
        assert f"{cause} {short[cause]}" in sent[0], sent[0]
    # Consumer spans name the cause of what they heard too (shop.causation_id on every span).
    heard = [r for r in rows if f"heard PaymentCompleted {short['PaymentCompleted']}" in r]
    assert len(heard) == 3 and all(f"OrderPlaced {short['OrderPlaced']}" in r for r in heard), heard

    by_correlation = shopctl("trace", "--correlation", correlation)
    assert by_correlation.returncode == 0, by_correlation.stderr
    assert by_correlation.stdout.splitlines()[0] == lines[0]


def test_shopctl_trace_of_an_order_not_sampled_says_so(services, customer, sku):
    _, order_id = place_order(customer, sku, sampling="0")
    result = shopctl("trace", order_id, env={"OTEL_TRACES_SAMPLER_ARG": "0"})
    assert result.returncode == 4, result.stdout + result.stderr
    assert f"no trace for order {order_id} in Jaeger at " in result.stderr
    assert "not sampled? tracing at 0%" in result.stderr, result.stderr
    assert result.stdout == ""


def test_shopctl_trace_refuses_bad_input_and_names_an_unreachable_jaeger(stack):
    both = [str(uuid4()), "--correlation", str(uuid4())]
    for args in (["not-a-uuid"], ["--correlation", "nope"], [], both):
        result = shopctl("trace", *args, timeout=60)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.startswith("error: "), result.stderr
    unknown = str(uuid4())
    missing = shopctl("trace", unknown, timeout=60)
    assert missing.returncode == 4 and f"no trace for order {unknown}" in missing.stderr, missing.stderr
    away = shopctl("trace", unknown, env={"JAEGER_QUERY_URL": "http://127.0.0.1:9"}, timeout=60)
    assert away.returncode == 3, away.stderr
    assert "Jaeger unreachable at http://127.0.0.1:9" in away.stderr, away.stderr
