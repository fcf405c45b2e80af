"""`shopctl trace`: an order's trace, read from Jaeger's query API and drawn as a waterfall.

Found by the span attributes the runtime sets on every span of a saga (shared/messaging/tracing.py):
`shop.order_id`, or `shop.correlation_id` with --correlation. Each consumer span names the event it
handled and each producer span the event it published (`messaging.message.id`, `shop.event_type`),
with the event that caused it (`shop.causation_id`, the envelope's causation id): the waterfall shows
who heard what, what each decided, and why.

Fetching (`find_trace`) is apart from drawing (`waterfall`, a pure function of Jaeger's JSON)."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import httpx
import typer

from services.shopctl.errors import NOT_FOUND, CliError, bad_input, unavailable, uuid_argument
from shared.settings import Settings, get_settings

ORDER_ID = "shop.order_id"
CORRELATION_ID = "shop.correlation_id"
CAUSATION_ID = "shop.causation_id"
EVENT_ID = "messaging.message.id"
EVENT_TYPE = "shop.event_type"
TIMER = "shop.timer"
KEY = "messaging.kafka.message.key"  # a producer span's: the order id, every topic being keyed by it

# Jaeger's search needs a service: the order service hears every event of every saga, the timeline
# records them all; the others (and shopctl, whose span starts the trace) in case those are down.
SEARCH_FIRST = ("order", "timeline", "payment", "inventory", "shipping", "shopctl")
LOOKBACK_SECONDS = 7 * 24 * 3600  # as long as Kafka keeps events; Jaeger's memory store holds less
MIN_WIDTH = 80  # a terminal narrower than this is drawn as if it were this wide
MIN_BAR = 20  # the bar's cells when the text leaves less room than that

RED, BOLD, DIM, RESET = "\x1b[31m", "\x1b[1m", "\x1b[2m", "\x1b[0m"
# Bars coloured by service, as in Jaeger's UI; a service not named here takes the next free colour.
SERVICE_COLOURS = {
    "shopctl": "\x1b[37m",
    "order": "\x1b[34m",
    "payment": "\x1b[32m",
    "inventory": "\x1b[33m",
    "shipping": "\x1b[35m",
    "timeline": "\x1b[36m",
}
SPARE_COLOURS = ("\x1b[94m", "\x1b[92m", "\x1b[93m", "\x1b[95m", "\x1b[96m")


# ---------------------------------------------------------------------------------------------------
# Fetching


def find_trace(settings: Settings, key: str, value: str) -> tuple[dict[str, Any], list[str]]:
    """The trace with a span tagged `key=value` (Jaeger's JSON), and the ids of any other traces so
    tagged (an event published by hand for an order starts a trace of its own). CliError when Jaeger
    is unreachable (exit 3) or has no such trace (exit 4)."""
    base = settings.jaeger_query_url.rstrip("/")
    with httpx.Client(base_url=base, timeout=10) as client:
        known = set(_get(client, base, "/api/services", {}).get("data") or ())
        services = [s for s in SEARCH_FIRST if s in known] + sorted(known - set(SEARCH_FIRST) - {"jaeger"})
        now_us = int(time.time() * 1_000_000)
        for service in services:
            params = {
                "service": service,
                "tags": json.dumps({key: value}),
                "start": str(now_us - LOOKBACK_SECONDS * 1_000_000),
                "end": str(now_us),
                "limit": "20",
            }
            traces = _get(client, base, "/api/traces", params).get("data") or []
            if traces:
                # The earliest is the order's own; a search's result holds each trace whole.
                traces.sort(key=lambda t: min((s["startTime"] for s in t["spans"]), default=0))
                return traces[0], [t["traceID"] for t in traces[1:]]
    raise CliError(_not_found(settings, key, value), NOT_FOUND)


def _get(client: httpx.Client, base: str, path: str, params: dict[str, str]) -> dict[str, Any]:
    try:
        response = client.get(path, params=params)
    except httpx.HTTPError as exc:
        raise unavailable(f"Jaeger unreachable at {base}: {exc or type(exc).__name__}") from exc
    if response.status_code != 200:
        raise unavailable(
            f"Jaeger at {base} answered {path} with HTTP {response.status_code}: "
            f"{response.text.strip()[:200] or response.reason_phrase}"
        )
    try:
        body = response.json()
    except ValueError:
        raise unavailable(f"Jaeger at {base} answered {path} not with JSON: is it Jaeger?") from None
    if not isinstance(body, dict):
        raise unavailable(f"Jaeger at {base} answered {path} with unexpected JSON: is it Jaeger?")
    return body


def _not_found(settings: Settings, key: str, value: str) -> str:
    what = f"order {value}" if key == ORDER_ID else f"correlation id {value}"
    ratio = settings.otel_traces_sampler_arg
    return (
        f"no trace for {what} in Jaeger at {settings.jaeger_query_url} (not sampled? tracing at "
        f"{ratio * 100:g}%, OTEL_TRACES_SAMPLER_ARG={ratio:g}; not exported yet? services send spans "
        "every few seconds; Jaeger keeps traces in memory, from its last start only)"
    )


# ---------------------------------------------------------------------------------------------------
# Drawing


@dataclass(frozen=True)
class Row:
    span_id: str
    depth: int
    service: str
    name: str
    start_us: int  # from the trace's start
    duration_us: int
    event: str  # the event the span handled or published, "" for any other span
    cause: str  # the event that caused it, "" if none is named
    error: str | None  # None, or what went wrong ("" when the span says no more than that)


def _tags(items: Iterable[dict[str, Any]]) -> dict[str, Any]:
    return {t["key"]: t["value"] for t in items}


def _short(event_id: str) -> str:
    # The tail, as `order show` prints them: event ids are UUIDv7, whose first digits are the time.
    return event_id[-8:]


def _error_of(span: dict[str, Any], tags: dict[str, Any]) -> str | None:
    failed = tags.get("error") in (True, "true") or str(tags.get("otel.status_code", "")).upper() == "ERROR"
    if not failed:
        return None
    if tags.get("otel.status_description"):
        return str(tags["otel.status_description"])
    for log in span.get("logs") or ():
        fields = _tags(log.get("fields") or ())
        if fields.get("event") == "exception":
            return ": ".join(str(fields[k]) for k in ("exception.type", "exception.message") if k in fields)
    return ""


def rows(trace: dict[str, Any]) -> list[Row]:
    """One row per span in start order (a parent before its children at the same instant), each with
    its depth in the tree; a span whose parent is not in the trace (not exported yet) is a root."""
    spans = {s["spanID"]: s for s in trace["spans"]}
    if not spans:
        return []
    processes = trace.get("processes") or {}
    tags = {sid: _tags(s.get("tags") or ()) for sid, s in spans.items()}
    event_types = {t[EVENT_ID]: t.get(EVENT_TYPE, "?") for t in tags.values() if EVENT_ID in t}

    def parent(span: dict[str, Any]) -> str | None:
        for ref in span.get("references") or ():
            if ref.get("refType") == "CHILD_OF" and ref.get("spanID") in spans:
                return str(ref["spanID"])
        return None

    depths: dict[str, int] = {}

    def depth(sid: str) -> int:
        chain = []
        while sid not in depths:
            chain.append(sid)
            up = parent(spans[sid])
            if up is None or up in chain:  # a root, or a cycle no tracer makes
                depths[sid] = 0
                chain.pop()
                break
            sid = up
        for below in reversed(chain):
            depths[below] = depths[sid] + 1
            sid = below
        return depths[sid]

    def named(event_id: str) -> str:
        return f"{event_types.get(event_id, 'event')} {_short(event_id)}"

    t0 = min(s["startTime"] for s in spans.values())
    out = []
    for sid, span in spans.items():
        t = tags[sid]
        kind = t.get("span.kind")
        if EVENT_ID in t:
            verb = "sent" if kind == "producer" else "heard"
            event = f"{verb} {t.get(EVENT_TYPE, '?')} {_short(t[EVENT_ID])}"
        elif TIMER in t:
            event = f"timer {t[TIMER]}"
        else:
            event = ""
        if CAUSATION_ID in t:
            cause = named(t[CAUSATION_ID])
        elif kind == "producer" and (up := parent(span)) and EVENT_ID in tags[up]:
            cause = named(tags[up][EVENT_ID])  # spans from before the runtime named causes: the handler's
        else:
            cause = ""
        out.append(
            Row(
                span_id=sid,
                depth=depth(sid),
                service=(processes.get(span.get("processID")) or {}).get("serviceName", "?"),
                name=span.get("operationName", ""),
                start_us=span["startTime"] - t0,
                duration_us=span.get("duration", 0),
                event=event,
                cause=cause,
                error=_error_of(span, t),
            )
        )
    out.sort(key=lambda r: (r.start_us, r.depth))
    return out


def _ms(us: int) -> str:
    return f"{us / 1000:.1f}"


def _bar(row: Row, total_us: int, cells: int) -> str:
    first = min(cells - 1, row.start_us * cells // total_us)
    last = max(first + 1, min(cells, -(-(row.start_us + row.duration_us) * cells // total_us)))
    return " " * first + "█" * (last - first) + " " * (cells - last)


def waterfall(trace: dict[str, Any], width: int, colour: bool = False) -> list[str]:
    """The trace as lines of text: a header, one row per span (status, start offset and duration in
    ms, service and span name indented by depth, the event and its cause, a bar on the trace's time
    scale filling what `width` leaves), then the errors. Colour (ANSI) only if asked; an error is
    marked in words either way. A pure function of Jaeger's JSON for one trace."""
    table = rows(trace)
    if not table:
        return [f"trace {trace.get('traceID', '?')}: no spans"]
    total = max(1, max(r.start_us + r.duration_us for r in table))
    services = list(dict.fromkeys(r.service for r in table))
    all_tags = [_tags(s.get("tags") or ()) for s in trace["spans"]]
    # Spans from before the runtime tagged shop.order_id name it as their key.
    order = next((t[k] for k in (ORDER_ID, KEY) for t in all_tags if k in t), None)
    started = datetime.fromtimestamp(min(s["startTime"] for s in trace["spans"]) / 1e6, UTC)
    errors = [r for r in table if r.error is not None]

    def bold(text: str) -> str:
        return f"{BOLD}{text}{RESET}" if colour else text

    at = f"{started:%Y-%m-%d %H:%M:%S.%f}"[:-3]
    lines = [
        (f"order {bold(order)}, " if order else "")
        + f"trace {trace.get('traceID', '?')}: {len(table)} spans, {len(services)} services, "
        + f"{_ms(total)} ms from {at} UTC"
        + (f", {len(errors)} with errors" if errors else "")
    ]
    # (heading, alignment, cells); the status column only when something failed
    columns = [
        ("", "<", ["ERROR" if r.error is not None else "" for r in table]),
        ("start ms", ">", [_ms(r.start_us) for r in table]),
        ("dur ms", ">", [_ms(r.duration_us) for r in table]),
        ("service and span", "<", ["  " * r.depth + f"{r.service} {r.name}" for r in table]),
        ("event", "<", [r.event for r in table]),
        ("caused by", "<", [r.cause for r in table]),
    ][0 if errors else 1 :]
    widths = [max(len(h), *(len(c) for c in cells)) for h, _, cells in columns]
    bar_cells = max(MIN_BAR, max(width, MIN_WIDTH) - sum(widths) - 2 * len(widths) - 2)
    scale = f"0 ms{f'{_ms(total)} ms':─>{bar_cells - 4}}"
    heads = [f"{h:{a}{w}}" for (h, a, _), w in zip(columns, widths, strict=True)]
    lines.append("  ".join(heads) + "  " + scale)
    palette = dict(SERVICE_COLOURS)
    spare = iter(SPARE_COLOURS * (1 + len(services)))
    for s in services:
        palette.setdefault(s, next(spare))
    for i, r in enumerate(table):
        fields = [f"{cells[i]:{a}{w}}" for (_, a, cells), w in zip(columns, widths, strict=True)]
        bar = _bar(r, total, bar_cells)
        if colour:
            if r.error is not None:
                fields[0] = f"{RED}{BOLD}{fields[0]}{RESET}"
            fields[-1] = f"{DIM}{fields[-1]}{RESET}"
            bar = f"{RED if r.error is not None else palette[r.service]}{bar}{RESET}"
        lines.append("  ".join(fields) + " │" + bar + "│")
    lines.append(f"services: {', '.join(services)}")
    for r in errors:
        what = f": {r.error}" if r.error else ""
        line = f"ERROR in {r.service} {r.name} at +{_ms(r.start_us)} ms{what}"
        lines.append(f"{RED}{line}{RESET}" if colour else line)
    return [line.rstrip() for line in lines]


# ---------------------------------------------------------------------------------------------------
# The command


def _colour() -> bool:
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def run(
    order_id: Annotated[str | None, typer.Argument(help="The order id")] = None,
    correlation: Annotated[
        str | None, typer.Option("--correlation", help="Find the order's trace by correlation id")
    ] = None,
) -> None:
    """The order's trace from Jaeger as a waterfall: every span in start order, by service, with the
    event each handled or published and the event that caused it."""
    if (order_id is None) == (correlation is None):
        raise bad_input("give an ORDER_ID or --correlation ID, not both and not neither")
    if correlation is not None:
        key, value = CORRELATION_ID, str(uuid_argument(correlation, "--correlation"))
    else:
        key, value = ORDER_ID, str(uuid_argument(order_id or "", "ORDER_ID"))
    settings = get_settings()
    found, others = find_trace(settings, key, value)
    width = shutil.get_terminal_size((120, 24)).columns
    for line in waterfall(found, width, _colour()):
        print(line)
    jaeger = settings.jaeger_query_url.rstrip("/")
    print(f"trace: {jaeger}/trace/{found['traceID']} (API: {jaeger}/api/traces/{found['traceID']})")
    if others:
        print(f"other traces naming it (events published by hand?): {', '.join(others)}")
