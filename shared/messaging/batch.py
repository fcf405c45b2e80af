"""One batch in one database transaction, and no Kafka in it.

Begin; claim the batch's event ids in the inbox (those handled before are skipped); prefetch what the
handlers declared they read; run each handler in its trace and log context; flush the unit of work's
writes; write the decided events to the outbox; commit. A statement per table, never per message.

What can go wrong is said with an exception the consumer's retry loop acts on: an outage
(TransientError: wait, retry the batch as it is), a message found poison inside (PoisonFound: retry at
once without it), a message's handler failing (MessageFailed: count an attempt of that message), or a
failure no single message can be blamed for (BatchFailed: the consumer narrows it down).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Engine

from shared.contracts import Envelope, Event
from shared.messaging import metrics
from shared.messaging.driver import DATABASE_ERRORS, pipelined, transaction
from shared.messaging.errors import PoisonMessage, TransientError
from shared.messaging.inbound import Inbound
from shared.messaging.inbox import claim
from shared.messaging.logs import message_context
from shared.messaging.outages import is_outage
from shared.messaging.outbox import add_to_outbox
from shared.messaging.publishing import MessageFactory, OutgoingMessage
from shared.messaging.tracing import consuming
from shared.messaging.unit_of_work import Needs, UnitOfWork

log = logging.getLogger("shop.consumer")

Handler = Callable[[Event, UnitOfWork, Envelope], Iterable[Event] | None]


class MessageFailed(Exception):
    def __init__(self, item: Inbound, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.item = item
        self.cause = cause


class BatchFailed(Exception):
    """An error that is no outage and that no single handler raised (e.g. a constraint at flush)."""

    def __init__(self, items: list[Inbound], cause: BaseException) -> None:
        super().__init__(str(cause))
        self.items = items
        self.cause = cause


class PoisonFound(Exception):
    """A message turned out poison inside the transaction: redo the batch without it."""


class BatchTransaction:
    def __init__(
        self,
        *,
        engine: Engine,
        group: str,
        handlers: Mapping[type[Event], Handler],
        factory: MessageFactory,
        uow_factory: Callable[[Connection], UnitOfWork] = UnitOfWork,
        needs: Needs | None = None,
        after_commit: Callable[[], None] | None = None,
    ) -> None:
        self._engine = engine
        self._group = group
        self.handlers = {t.type_name(): h for t, h in handlers.items()}
        self._factory = factory
        self._uow_factory = uow_factory
        self._needs: Needs = needs or {}
        self._after_commit = after_commit
        # Metric children bound once, not looked up per message.
        self._m_handled = {name: metrics.MESSAGES_HANDLED.labels(group, name) for name in self.handlers}
        self._m_latency = {name: metrics.HANDLER_SECONDS.labels(group, name) for name in self.handlers}
        self._m_duplicates = metrics.DUPLICATES_SKIPPED.labels(group)

    def run(self, todo: list[Inbound]) -> None:
        """Handle these decoded messages and commit; each is then `committed`."""
        try:
            with transaction(self._engine) as conn:
                # BEGIN goes with the claim; the client waits for the claim, for each table's reads,
                # and once at the end of each pipeline. The handlers run between the two, where a
                # statement of their own (SQLAlchemy's too) is a statement like any other.
                with pipelined(conn, begin=True):
                    fresh = self._claim(conn, todo)
                    uow = self._uow_factory(conn)
                    # Reads for the whole batch before any handler runs, writes after the last one.
                    _whole_batch(todo, uow.prefetch, self._needs, [(i.event, i.envelope) for i in fresh])
                outgoing: list[OutgoingMessage] = []
                for item in fresh:
                    outgoing.extend(self._handle(item, uow))
                with pipelined(conn, commit=True):  # the writes and the COMMIT in one round trip
                    _whole_batch(todo, uow.flush)
                    add_to_outbox(conn, outgoing)
        except DATABASE_ERRORS as exc:
            if is_outage(exc):
                raise TransientError(str(getattr(exc, "orig", None) or exc)) from exc
            raise BatchFailed(todo, exc) from exc
        for item in todo:
            item.committed = True
        for name, count in Counter(i.envelope.event_type for i in fresh).items():  # type: ignore[union-attr]
            self._m_handled[name].inc(count)
        if self._after_commit:
            self._after_commit()

    def _claim(self, conn: Connection, todo: Sequence[Inbound]) -> list[Inbound]:
        """The messages this group has not handled before; a second copy within the batch is a repeat."""
        seen = claim(conn, self._group, [i.envelope for i in todo])  # type: ignore[misc]
        fresh = []
        for item in todo:
            event_id = item.envelope.event_id  # type: ignore[union-attr]
            if event_id in seen:
                self._m_duplicates.inc()
                continue
            seen.add(event_id)
            fresh.append(item)
        return fresh

    def _handle(self, item: Inbound, uow: UnitOfWork) -> list[OutgoingMessage]:
        envelope, event = item.envelope, item.event
        assert envelope is not None and event is not None
        name, routing = envelope.event_type, item.routing
        with (
            consuming(
                topic=item.topic,
                partition=item.partition,
                offset=item.offset,
                group=self._group,
                event_id=str(envelope.event_id),
                event_type=name,
                correlation_id=str(envelope.correlation_id),
                causation_id=envelope.causation_id,
                order_id=event.order_id,
                traceparent=routing.traceparent,
                tracestate=routing.tracestate,
                trace_problem=routing.trace_problem,
            ) as trace_id,
            message_context(
                event_id=envelope.event_id,
                event_type=name,
                correlation_id=envelope.correlation_id,
                causation_id=envelope.causation_id,
                trace_id=trace_id,
            ),
            self._m_latency[name].time(),
        ):
            try:
                emitted = self.handlers[name](event, uow, envelope) or ()
                return [self._factory.message(e, envelope.correlation_id, envelope.event_id) for e in emitted]
            except PoisonMessage as exc:
                # Undo everything of this batch and go again without it: no savepoint per message.
                item.poison = exc
                raise PoisonFound from exc
            except DATABASE_ERRORS as exc:  # a read no declaration prefetched, done in the handler's time
                if is_outage(exc):
                    raise
                raise MessageFailed(item, exc) from exc
            except Exception as exc:
                log.warning("handler failed (attempt %d): %r", item.attempts + 1, exc)
                raise MessageFailed(item, exc) from exc


def _whole_batch(items: list[Inbound], step: Callable[..., None], *args: Any) -> None:
    """A step of the whole batch (prefetch, flush): a database error is for run() to classify; any
    other error cannot be blamed on one message either."""
    try:
        step(*args)
    except DATABASE_ERRORS:
        raise
    except Exception as exc:
        raise BatchFailed(items, exc) from exc
