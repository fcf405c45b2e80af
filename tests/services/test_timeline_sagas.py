"""The read model's saga summary on the real schema: whatever the order the events come in, alone or in
one batch, and however often, a saga's row says when it began, what was heard last, which facts, and
when it ended."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from sqlalchemy import Engine, create_engine, text

from services.timeline import handlers as timeline
from services.timeline.storage import TimelineUnitOfWork
from shared.contracts import Envelope, Event, OrderCompleted, PaymentCompleted, ShipmentCreated
from shared.migrations import migrate
from tests.services.handling import handle
from tests.services.test_arrival_orders import order_placed


@pytest.fixture(scope="module")
def engine(settings) -> Engine:
    url = settings.database_url("timeline")
    migrate("timeline", url)
    engine = create_engine(url)
    yield engine
    engine.dispose()


def saga(engine: Engine, order_id: UUID) -> dict:
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT first_at, last_at, last_event, last_source, facts, ended_at "
                "FROM sagas WHERE order_id = :o"
            ),
            {"o": order_id},
        ).one()
    return row._asdict()


@pytest.mark.parametrize("arrival", list(itertools.permutations(range(3))))
@pytest.mark.parametrize("batched", [False, True], ids=["one by one", "one batch"])
def test_a_sagas_row_is_the_same_whatever_the_order_and_the_repeats(engine, arrival, batched):
    placed = order_placed("C-1", "SKU-1", 1)
    order_id, correlation_id = placed.order_id, uuid4()
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    facts: list[tuple[Event, Envelope]] = []
    for n, (event, source) in enumerate(
        [
            (placed, "storefront"),
            (PaymentCompleted(order_id=order_id, payment_id=uuid4(), customer_id="C-1", amount=placed.total,
                              currency="EUR"), "payment"),
            (ShipmentCreated(order_id=order_id, shipment_id=uuid4(), tracking_number="TRK-1", country="DE"),
             "shipping"),
        ]
    ):  # fmt: skip
        facts.append((event, _envelope(event, source, correlation_id, start + timedelta(seconds=n))))
    arrived = [facts[i] for i in arrival]
    batches = [arrived + arrived] if batched else [[f] for f in arrived + arrived]
    for batch in batches:
        with engine.begin() as conn:
            handle(conn, TimelineUnitOfWork, timeline.HANDLERS, {}, batch)
    assert saga(engine, order_id) == {
        "first_at": start,
        "last_at": start + timedelta(seconds=2),
        "last_event": "ShipmentCreated",
        "last_source": "shipping",
        "facts": ["OrderPlaced", "PaymentCompleted", "ShipmentCreated"],
        "ended_at": None,
    }
    completed = OrderCompleted(order_id=order_id, tracking_number="TRK-1")
    ended_at = start + timedelta(seconds=3)
    with engine.begin() as conn:
        handle(
            conn,
            TimelineUnitOfWork,
            timeline.HANDLERS,
            {},
            [(completed, _envelope(completed, "order", correlation_id, ended_at))],
        )
    row = saga(engine, order_id)
    assert (row["last_event"], row["ended_at"]) == ("OrderCompleted", ended_at)


def _envelope(event: Event, source: str, correlation_id: UUID, at: datetime) -> Envelope:
    return Envelope(
        event_id=uuid4(),
        event_type=type(event).__name__,
        schema_version=1,
        occurred_at=at,
        source=source,
        correlation_id=correlation_id,
    )
