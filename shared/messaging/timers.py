"""Work a service does because time passed, not because a message came: deadlines.

A timer is a function of the unit of work, like a handler: it finds what is due through a repository
(rows another transaction holds are skipped, not waited for), changes it, and says which events that
decided. The runtime runs each timer every few seconds in a transaction of its own, on the service's
own thread beside the consumer and the relay: the decision and its events (through the outbox)
commit together, as a batch's do. What is due is kept in the service's tables, so a deadline that
passed while the process was down fires at its first look after the restart.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar
from uuid import UUID

import psycopg
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from shared.contracts import Event
from shared.messaging import metrics
from shared.messaging.driver import statements
from shared.messaging.outbox import add_to_outbox
from shared.messaging.publishing import MessageFactory
from shared.messaging.retry import Backoff
from shared.messaging.tracing import continuing
from shared.messaging.unit_of_work import UnitOfWork

log = logging.getLogger("shop.timers")

# The kind of event a timer decides: a timer's return annotation names it (`list[Decided[OrderCancelled]]`),
# which is how the flow map (services/shopctl/flow.py) knows what the timer can publish.
E = TypeVar("E", bound=Event)


@dataclass(frozen=True)
class Decided(Generic[E]):
    """An event a timer decided, the saga (correlation id) it belongs to, and the trace it continues
    (the traceparent recorded with the saga's first fact; None starts a trace)."""

    event: E
    correlation_id: UUID
    traceparent: str | None = None


@dataclass(frozen=True)
class Timer:
    name: str
    # Finds up to `limit` due things in the unit of work and decides: the events, in order.
    fire: Callable[[UnitOfWork, int], Sequence[Decided]]
    every: float = 1.0  # seconds between looks; a full batch is followed by another at once
    limit: int = 500


class TimerRunner:
    def __init__(
        self,
        *,
        engine: Engine,
        service: str,
        uow_factory: Callable[[Connection], UnitOfWork],
        factory: MessageFactory,
        timers: Sequence[Timer],
        backoff: Backoff | None = None,
    ) -> None:
        self._engine = engine
        self._uow_factory = uow_factory
        self._factory = factory
        self.timers = tuple(timers)
        self._backoff = backoff or Backoff(initial=1.0, maximum=30.0)
        self._fired = {t.name: metrics.TIMER_DECISIONS.labels(service, t.name) for t in timers}
        self.last_look = time.monotonic()  # the last look that worked, for health

    def fire(self, timer: Timer) -> int:
        """One look, one transaction: how many events it decided."""
        with self._engine.begin() as conn, statements(conn):
            uow = self._uow_factory(conn)
            decided = timer.fire(uow, timer.limit)
            uow.flush()
            messages = []
            for d in decided:
                # Caused by the clock, not by an event: a span of its own in its saga's trace.
                with continuing(
                    d.traceparent,
                    f"{timer.name} {d.event.type_name()}",
                    {
                        "shop.correlation_id": str(d.correlation_id),
                        "shop.order_id": str(d.event.order_id),
                        "shop.timer": timer.name,
                    },
                ):
                    messages.append(self._factory.message(d.event, d.correlation_id, None))
            add_to_outbox(conn, messages)
        self._fired[timer.name].inc(len(decided))
        for d in decided:
            log.info("%s: %s for order %s", timer.name, d.event.type_name(), d.event.order_id)
        return len(decided)

    def run(self, stop: threading.Event) -> None:
        """Until stop is set: each timer when it is due; a database away is waited out with backoff."""
        due = dict.fromkeys((t.name for t in self.timers), 0.0)
        attempt = 0
        while not stop.is_set():
            for timer in self.timers:
                if time.monotonic() < due[timer.name]:
                    continue
                try:
                    full = self.fire(timer) >= timer.limit
                except (DBAPIError, psycopg.Error) as exc:
                    attempt += 1
                    delay = self._backoff.delay(attempt)
                    log.warning(
                        "timer %s failed (attempt %d), next look in %.1fs: %s",
                        timer.name,
                        attempt,
                        delay,
                        exc,
                    )
                    due[timer.name] = time.monotonic() + delay
                    continue
                attempt = 0
                self.last_look = time.monotonic()
                due[timer.name] = self.last_look + (0 if full else timer.every)
            stop.wait(max(0.0, min(due.values()) - time.monotonic()))

    def health(self, now: float) -> dict[str, object]:
        longest = max((t.every for t in self.timers), default=1.0)
        since = now - self.last_look
        return {"seconds_since_timers": round(since, 1), "timers_healthy": since < max(30.0, 10 * longest)}
