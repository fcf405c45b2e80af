"""What the consumer reads of a message before (or instead of) decoding its body, validated.

Headers are written by whoever produced the message: any bytes, any size. The few the loop acts on
are checked here, in the one pass that finds them, before anything is done with them:
- `event_type` must name a known event type: it decides whether the body is decoded at all;
- `dlt_replay_group` must be a plausible group id;
- `traceparent` is continued only when it is a well-formed W3C one, and `tracestate` only when it is
  within the size W3C asks propagators to carry; otherwise the message starts a trace of its own, and
  what it carried never reaches an outbox row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared.contracts import EVENT_TYPES
from shared.messaging.dead_letters import REPLAY_GROUP
from shared.messaging.headers import EVENT_TYPE, KafkaHeaders
from shared.messaging.tracing import TRACEPARENT, TRACESTATE

_TRACEPARENT = re.compile(rb"(?!ff)[0-9a-f]{2}-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}")
_TRACEPARENT_SIZE = 55
# W3C: propagators must carry at least 512 characters of tracestate and may drop a longer one.
_TRACESTATE_MAX = 512
_TRACESTATE = re.compile(rb"[\x20-\x7e]*")
_GROUP_MAX = 255
_ROUTED = frozenset({EVENT_TYPE, REPLAY_GROUP, TRACEPARENT, TRACESTATE})


@dataclass(slots=True)
class Routing:
    event_type: str | None = None  # a known event type's name, when the header names one
    replay_group: str | None = None
    traceparent: str | None = None  # well-formed, or None
    tracestate: str | None = None
    problem: str | None = None  # a header that makes the message poison
    trace_problem: str | None = None  # why the trace the message carried is not continued


def routing_of(headers: KafkaHeaders) -> Routing:
    """One pass over the headers; the last value of a repeated header counts, as in header()."""
    routing = Routing()
    if not headers:
        return routing
    for key, value in headers:
        if key not in _ROUTED:
            continue
        raw = value or b""
        if key == EVENT_TYPE:
            name = raw.decode("ascii", "replace") if len(raw) <= 64 else None
            if name in EVENT_TYPES:
                routing.event_type, routing.problem = name, None
            else:
                routing.event_type = None
                routing.problem = f"header {EVENT_TYPE} names no known event type: {_shown(raw)}"
        elif key == REPLAY_GROUP:
            try:
                group = raw.decode("utf-8")
            except UnicodeDecodeError:
                group = ""
            if group and len(raw) <= _GROUP_MAX and group.isprintable():
                routing.replay_group = group
            else:
                routing.problem = f"header {REPLAY_GROUP} is not a consumer group id: {_shown(raw)}"
        elif key == TRACEPARENT:
            if len(raw) == _TRACEPARENT_SIZE and _TRACEPARENT.fullmatch(raw):
                routing.traceparent, routing.trace_problem = raw.decode("ascii"), None
            else:
                routing.traceparent = None
                routing.trace_problem = f"{TRACEPARENT} is not a W3C traceparent: {_shown(raw)}"
        elif len(raw) <= _TRACESTATE_MAX and _TRACESTATE.fullmatch(raw):
            routing.tracestate = raw.decode("ascii")
        else:
            routing.tracestate = None  # dropped; the traceparent still counts
    return routing


def _shown(raw: bytes) -> str:
    """A header value as a log line or a dead letter may quote it: short, printable."""
    if len(raw) > 24:
        return f"{len(raw)} bytes starting {raw[:12]!r}"
    return repr(raw)
