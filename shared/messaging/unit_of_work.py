"""The unit of work a batch's handlers share: one database transaction, the repositories of the
service's tables, and what the handlers declared they read.

Per batch, before any handler runs, the unit of work reads what every event of the batch needs, one
statement per table (`prefetch`); handlers then work in memory; after the last one, `flush` writes
each table's changes in one statement per kind. Services subclass it and list their repositories in
the order their tables are read and locked.

What a handler reads is declared per event type in a table of `Needs` beside the handlers: a function
that `want`s keys of the unit of work's repositories. A read whose keys come from another table's rows
(the customer of a payment) is a generator: it wants the first keys, `yield`s, and wants the rest from
what was read. Each table is best wanted in one stage only, so it is read, and locked, once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy import Connection

from shared.contracts import Envelope, Event


class Store(Protocol):
    def want(self, keys: Iterable[Any]) -> None: ...
    def load(self) -> None: ...
    def flush(self) -> None: ...


# What one handler reads for one event (called as the handler is: event, unit of work, envelope):
# wants keys; a generator where keys depend on earlier reads.
Need = Callable[[Any, Any, Envelope], Iterator[None] | None]
Needs = Mapping[type[Event], Need]


class UnitOfWork:
    # The service's repositories, in the order their tables are read (and so locked).
    stores: Sequence[Store] = ()

    def __init__(self, connection: Connection) -> None:
        # The runtime begins and commits the transaction: a handler never commits by itself.
        self.connection = connection

    def prefetch(self, needs: Needs, events: Iterable[tuple[Event, Envelope]]) -> None:
        """Read what the events' handlers need: one statement per table and stage, whatever the count."""
        later: list[Iterator[None]] = []
        for event, envelope in events:
            need = needs.get(type(event))
            if need is not None:
                stages = need(event, self, envelope)
                if stages is not None:
                    later.append(stages)
        later = [s for s in later if _advance(s)]  # a generator's first stage runs on its first next()
        self.load()
        while later:
            later = [s for s in later if _advance(s)]
            self.load()

    def load(self) -> None:
        for store in self.stores:
            store.load()

    def flush(self) -> None:
        for store in self.stores:
            store.flush()


def _advance(stages: Iterator[None]) -> bool:
    try:
        next(stages)
    except StopIteration:
        return False
    return True
