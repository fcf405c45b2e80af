"""`shopctl trace` draws a trace as a waterfall: a pure function of Jaeger's JSON, tried here on a trace
recorded from the stack's Jaeger v2 (data/jaeger_trace.json: one completed order, as the query API
answered it).

The recording predates the runtime's `shop.order_id` and `shop.causation_id` attributes; `tagged()`
adds them as the runtime now sets them (the order id on every span, the envelope's causation id on
every span of an event caused by another), and the drawing is tried both ways."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from services.shopctl.trace import MIN_BAR, MIN_WIDTH, rows, waterfall

RECORDED = Path(__file__).parent / "data" / "jaeger_trace.json"
ORDER_ID = "f53daf4d-733a-4a4b-aa25-42c7f6eef928"
SERVICES = ("shopctl", "order", "payment", "inventory", "shipping", "timeline")
# The recorded saga: each event (its id's last 8 digits) with the event that caused it.
SAGA = {
    "OrderPlaced": ("2303dd1a", None),
    "PaymentCompleted": ("0cde9551", "OrderPlaced"),
    "StockReserved": ("e1a677e3", "PaymentCompleted"),
    "ShipmentCreated": ("3a5b0bc6", "StockReserved"),
    "OrderCompleted": ("5cdda8fc", "ShipmentCreated"),
    "StockShipped": ("1a7baff1", "ShipmentCreated"),
}
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _tags(span: dict[str, Any]) -> dict[str, Any]:
    return {t["key"]: t["value"] for t in span["tags"]}


def _tag(span: dict[str, Any], key: str, value: str) -> None:
    span["tags"].append({"key": key, "type": "string", "value": value})


def tagged(recorded: dict[str, Any]) -> dict[str, Any]:
    """The recording with the attributes the runtime sets now (shared/messaging/tracing.py and
    publishing.py): `shop.order_id` everywhere; `shop.causation_id` on a producer span (the event its
    handler heard: its parent's) and on each consumer span of that event (the producer's)."""
    trace = copy.deepcopy(recorded)
    spans = {s["spanID"]: s for s in trace["spans"]}
    caused = {}
    for span in spans.values():
        _tag(span, "shop.order_id", ORDER_ID)
        parent = _parent(span)
        if _tags(span)["span.kind"] == "producer" and parent is not None:
            cause = _tags(spans[parent])["messaging.message.id"]
            caused[_tags(span)["messaging.message.id"]] = cause
            _tag(span, "shop.causation_id", cause)
    for span in spans.values():
        t = _tags(span)
        if t["span.kind"] == "consumer" and t["messaging.message.id"] in caused:
            _tag(span, "shop.causation_id", caused[t["messaging.message.id"]])
    return trace


@pytest.fixture
def recorded() -> dict[str, Any]:
    return json.loads(RECORDED.read_text())["data"][0]


@pytest.fixture
def trace(recorded) -> dict[str, Any]:
    return tagged(recorded)


def bar_of(line: str) -> str:
    return line[line.index("│") + 1 : -1]


def span_rows(lines: list[str]) -> list[str]:
    return [line for line in lines if line.endswith("│")]


def _parent(span: dict[str, Any]) -> str | None:
    return next((r["spanID"] for r in span["references"] if r["refType"] == "CHILD_OF"), None)


def test_one_row_per_span_in_start_order_each_one_level_below_its_parent(trace):
    table = rows(trace)
    spans = {s["spanID"]: s for s in trace["spans"]}
    assert sorted(r.span_id for r in table) == sorted(spans)
    assert [r.start_us for r in table] == sorted(r.start_us for r in table)
    depth = {r.span_id: r.depth for r in table}
    for r in table:
        parent = _parent(spans[r.span_id])
        assert r.depth == (0 if parent is None else depth[parent] + 1), r
    first = table[0]
    assert (first.service, first.name, first.start_us, first.depth) == (
        "shopctl", "create storefront.events", 0, 0,
    )  # fmt: skip
    assert {r.service for r in table} == set(SERVICES)
    assert all(r.error is None for r in table)


def test_each_event_is_named_with_the_event_that_caused_it(trace):
    table = rows(trace)
    for event, (short, cause) in SAGA.items():
        [sent] = [r for r in table if r.event == f"sent {event} {short}"]
        assert sent.cause == (f"{cause} {SAGA[cause][0]}" if cause else ""), sent
        heard = [r for r in table if r.event == f"heard {event} {short}"]
        assert heard, f"someone heard {event}"
        # A consumer span names the cause of what it heard: shop.causation_id on every span.
        assert {r.cause for r in heard} == {sent.cause}
    # Five services heard OrderPlaced, each in a span of its own, children of shopctl's.
    placed = [r for r in table if r.event.startswith("heard OrderPlaced")]
    assert sorted(r.service for r in placed) == ["inventory", "order", "payment", "shipping", "timeline"]
    assert {r.depth for r in placed} == {1}


def test_the_drawing_header_rows_indentation_and_events(trace):
    lines = waterfall(trace, 200)
    assert lines[0].startswith(f"order {ORDER_ID}, trace {trace['traceID']}: {len(trace['spans'])} spans, ")
    assert "6 services" in lines[0] and "with errors" not in lines[0]
    assert lines[1].split()[:6] == ["start", "ms", "dur", "ms", "service", "and"]
    drawn = span_rows(lines)
    assert len(drawn) == len(trace["spans"])
    for line, r in zip(drawn, rows(trace), strict=True):
        # Offset and duration in ms, then the span's label indented two spaces per level.
        times = rf"\s*{r.start_us / 1000:.1f}\s+{r.duration_us / 1000:.1f}  "
        assert re.match(times + "  " * r.depth + re.escape(f"{r.service} {r.name} "), line), (line, r)
        assert r.event in line and r.cause in line
    assert lines[len(drawn) + 2] == "services: " + ", ".join(dict.fromkeys(r.service for r in rows(trace)))
    assert not any("ERROR" in line or "\x1b" in line for line in lines)


def test_the_bar_fills_the_width_and_sits_on_the_traces_time_scale(trace):
    table = rows(trace)
    total = max(r.start_us + r.duration_us for r in table)
    narrow, wide = waterfall(trace, 200), waterfall(trace, 260)
    assert max(map(len, narrow)) == 199 and max(map(len, wide)) == 259  # a column spare: no wrap
    cells = len(bar_of(span_rows(narrow)[0]))
    assert len(bar_of(span_rows(wide)[0])) == cells + 60
    for line, r in zip(span_rows(wide), table, strict=True):
        bar = bar_of(line)
        assert len(bar) == cells + 60 and set(bar) <= {" ", "█"} and "█" in bar
        start = bar.index("█")
        assert start == min(len(bar) - 1, r.start_us * len(bar) // total), (line, r)
        assert "█" * (len(bar.strip())) == bar.strip(), "one run of cells"
    assert bar_of(span_rows(wide)[0]).startswith("█"), "the first span starts the trace"
    last = max(table, key=lambda r: r.start_us + r.duration_us)
    assert bar_of(span_rows(wide)[table.index(last)]).endswith("█"), "the last to end ends it"
    # The scale above the bars: from 0 to the trace's length.
    assert narrow[1].endswith(f"{total / 1000:.1f} ms") and "0 ms─" in narrow[1]


def test_a_narrow_terminal_keeps_a_bar_of_the_minimum_width(trace):
    tiny = waterfall(trace, 10)
    assert tiny == waterfall(trace, MIN_WIDTH)
    assert all(len(bar_of(line)) == MIN_BAR for line in span_rows(tiny))


def test_errors_are_marked_in_words_and_in_red_only_when_asked(trace):
    failed = copy.deepcopy(trace)
    table = rows(failed)
    victim = next(
        r for r in table if r.service == "inventory" and r.event.startswith("heard PaymentCompleted")
    )
    span = next(s for s in failed["spans"] if s["spanID"] == victim.span_id)
    span["tags"] += [
        {"key": "error", "type": "bool", "value": True},
        {"key": "otel.status_code", "type": "string", "value": "ERROR"},
        {"key": "otel.status_description", "type": "string", "value": "OperationalError: server closed"},
    ]
    plain = waterfall(failed, 200)
    assert "1 with errors" in plain[0]
    marked = [line for line in span_rows(plain) if line.startswith("ERROR")]
    assert len(marked) == 1 and "inventory process payment.events" in marked[0]
    assert all(line.startswith(" " * 5) for line in span_rows(plain) if line != marked[0])
    assert plain[-1] == (
        f"ERROR in inventory process payment.events at +{victim.start_us / 1000:.1f} ms: "
        "OperationalError: server closed"
    )
    assert not any("\x1b" in line for line in plain)

    coloured = waterfall(failed, 200, colour=True)
    assert [ANSI.sub("", line) for line in coloured] == plain, "colour changes no character"
    [red_row] = [line for line in span_rows(coloured) if "ERROR" in line]
    assert "\x1b[31m" in red_row
    assert "\x1b[31m" not in "".join(line for line in span_rows(coloured) if line != red_row)
    assert coloured[-1].startswith("\x1b[31mERROR in inventory")


def test_an_exception_event_says_what_failed_when_the_status_does_not(trace):
    span = trace["spans"][0]
    span["tags"].append({"key": "error", "type": "bool", "value": True})
    span["logs"] = [
        {
            "timestamp": span["startTime"],
            "fields": [
                {"key": "event", "type": "string", "value": "exception"},
                {"key": "exception.type", "type": "string", "value": "KafkaException"},
                {"key": "exception.message", "type": "string", "value": "broker down"},
            ],
        }
    ]
    [r] = [r for r in rows(trace) if r.span_id == span["spanID"]]
    assert r.error == "KafkaException: broker down"


def test_spans_whose_parent_is_not_in_jaeger_yet_are_roots(trace):
    root = next(s for s in trace["spans"] if _parent(s) is None)
    trace["spans"].remove(root)
    table = rows(trace)
    assert len(table) == len(trace["spans"]) and table[0].start_us == 0
    orphans = [r for r in table if r.event.startswith("heard OrderPlaced")]
    assert orphans and all(r.depth == 0 for r in orphans)
    assert len(span_rows(waterfall(trace, 200))) == len(trace["spans"])


def test_spans_recorded_before_causation_ids_take_the_cause_from_the_tree(recorded):
    table = rows(recorded)
    for event, (short, cause) in SAGA.items():
        [sent] = [r for r in table if r.event == f"sent {event} {short}"]
        assert sent.cause == (f"{cause} {SAGA[cause][0]}" if cause else ""), sent  # what its parent heard
    assert all(r.cause == "" for r in table if r.event.startswith("heard"))
    # The order: from the producer spans' key, which is the order id.
    assert waterfall(recorded, 200)[0].startswith(f"order {ORDER_ID}, trace {recorded['traceID']}: ")


def test_a_trace_without_spans():
    assert waterfall({"traceID": "ab" * 16, "spans": [], "processes": {}}, 120) == [
        f"trace {'ab' * 16}: no spans"
    ]
