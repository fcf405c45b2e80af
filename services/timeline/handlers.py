"""What the timeline does with every saga event: record it, with its envelope and trace id, and move
its saga's summary (where it stands, for the sagas still open)."""

from __future__ import annotations

from services.timeline.storage import TimelineUnitOfWork
from shared.contracts import EVENT_TYPES, Envelope, Event
from shared.messaging.tracing import trace_id_in_scope


def record_event(event: Event, uow: TimelineUnitOfWork, envelope: Envelope) -> None:
    uow.timeline.record(
        {
            "event_id": envelope.event_id,
            "order_id": event.order_id,
            "correlation_id": envelope.correlation_id,
            "causation_id": envelope.causation_id,
            "event_type": envelope.event_type,
            "source": envelope.source,
            "occurred_at": envelope.occurred_at,
            "trace_id": trace_id_in_scope(),
            "payload": event.model_dump(mode="json", exclude={"order_id"}),
        }
    )
    uow.sagas.note(
        event.order_id, envelope.correlation_id, envelope.event_type, envelope.source, envelope.occurred_at
    )


HANDLERS = dict.fromkeys(EVENT_TYPES.values(), record_event)
PUBLISHES: list[type[Event]] = []
