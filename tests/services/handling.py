"""Handlers run as the runtime runs them, minus Kafka: reads prefetched, handler, writes flushed."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from sqlalchemy import Connection

from shared.contracts import Envelope, Event
from shared.messaging.unit_of_work import Needs, UnitOfWork


def handle(
    conn: Connection,
    uow_factory: Callable[[Connection], UnitOfWork],
    handlers: Mapping[type[Event], Callable],
    needs: Needs,
    batch: list[tuple[Event, Envelope]],
) -> list[Event]:
    """One batch in the caller's transaction; the events its handlers decided, in order."""
    uow = uow_factory(conn)
    uow.prefetch(needs, batch)
    emitted: list[Event] = []
    for event, envelope in batch:
        emitted.extend(handlers[type(event)](event, uow, envelope) or ())
    uow.flush()
    return emitted
