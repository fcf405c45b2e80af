"""The order's deadline on the real schema: a deadline that passed while no order process ran fires at
the first look; an order not yet due, or held by a batch deciding it now, is left alone; two sweepers
(this test's and the running order service's) decide an order once."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID, uuid4

import pytest
from sqlalchemy import Engine, create_engine, text

from services.order import handlers as order_handlers
from services.order.handlers import deadlines
from services.order.storage import OrderUnitOfWork
from shared.contracts import OrderCancelled, PaymentCompleted
from shared.messaging.codec import EventCodec, registry_as
from shared.messaging.publishing import MessageFactory
from shared.messaging.timers import TimerRunner
from shared.migrations import migrate
from tests.services.handling import handle
from tests.services.test_arrival_orders import envelope, order_placed


@pytest.fixture(scope="module")
def engine(settings) -> Engine:
    url = settings.database_url("order")
    migrate("order", url)
    engine = create_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def factory(settings) -> MessageFactory:
    codec = EventCodec(registry_as(settings))
    codec.look_up([OrderCancelled])
    return MessageFactory(codec, "order")


def runner(engine: Engine, factory: MessageFactory, timeout: timedelta) -> TimerRunner:
    return TimerRunner(
        engine=engine,
        service="order",
        uow_factory=OrderUnitOfWork,
        factory=factory,
        timers=[deadlines(timeout)],
    )


def paid_order(engine: Engine, first_heard_ago: timedelta) -> tuple[UUID, UUID]:
    """An order placed and paid, first heard of that long ago: its id and correlation id."""
    placed = order_placed("C-1", "SKU-1", 1)
    paid = PaymentCompleted(
        order_id=placed.order_id, payment_id=uuid4(), customer_id="C-1", amount=placed.total, currency="EUR"
    )
    first = envelope(placed)
    with engine.begin() as conn:
        handle(
            conn, OrderUnitOfWork, order_handlers.HANDLERS, order_handlers.NEEDS,
            [(placed, first), (paid, envelope(paid))],
        )  # fmt: skip
        conn.execute(
            text("UPDATE orders SET created_at = now() - :ago WHERE order_id = :id"),
            {"ago": first_heard_ago, "id": placed.order_id},
        )
    return placed.order_id, first.correlation_id


def state(engine: Engine, order_id: UUID) -> tuple[str, str | None]:
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT status, reason FROM orders WHERE order_id = :id"), {"id": order_id}
        ).one()
    return row.status, row.reason


def cancellations(engine: Engine, order_id: UUID) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT event_type, headers FROM outbox WHERE message_key = :key ORDER BY id"),
            {"key": str(order_id)},
        ).all()
    return [r.headers for r in rows if r.event_type == "OrderCancelled"]


def test_a_deadline_that_passed_while_no_order_process_ran_fires_at_the_first_look(engine, factory):
    order_id, correlation_id = paid_order(engine, first_heard_ago=timedelta(hours=2))
    sweeper = runner(engine, factory, timedelta(hours=1))
    while sweeper.fire(sweeper.timers[0]) >= sweeper.timers[0].limit:
        pass  # a backlog of overdue orders of other tests is drained in batches
    # Whoever looked first (this sweeper or the running order service's), it was decided once.
    assert state(engine, order_id) == ("cancelled", "timed out waiting for StockReserved, ShipmentCreated")
    [headers] = cancellations(engine, order_id)
    assert headers["correlation_id"] == str(correlation_id)
    assert headers["source"] == "order"


def test_an_order_not_yet_due_is_left_open(engine, factory):
    order_id, _ = paid_order(engine, first_heard_ago=timedelta(seconds=0))
    sweeper = runner(engine, factory, timedelta(hours=1))
    sweeper.fire(sweeper.timers[0])
    assert state(engine, order_id) == ("open", None)
    assert cancellations(engine, order_id) == []


def test_an_order_a_batch_holds_is_skipped_not_waited_for_and_decided_once_released(engine, factory):
    order_id, _ = paid_order(engine, first_heard_ago=timedelta(hours=2))
    sweeper = runner(engine, factory, timedelta(hours=1))
    with engine.connect() as holder:
        holder.execute(text("SELECT 1 FROM orders WHERE order_id = :id FOR UPDATE"), {"id": order_id})
        sweeper.fire(sweeper.timers[0])  # returns: SKIP LOCKED, no wait on the held row
        assert state(engine, order_id)[0] == "open"
        holder.rollback()
    while sweeper.fire(sweeper.timers[0]) >= sweeper.timers[0].limit:
        pass
    assert state(engine, order_id)[0] == "cancelled"
    assert len(cancellations(engine, order_id)) == 1
