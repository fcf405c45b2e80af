"""What the order service does with every fact about an order: record it in the order's history, and
declare the order completed or cancelled when the facts say so (services/order/domain.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Never

from services.order import domain
from services.order.storage import OrderUnitOfWork
from shared.contracts import (
    Envelope,
    Event,
    OrderCancelled,
    OrderCompleted,
    OrderPlaced,
    PaymentCompleted,
    PaymentFailed,
    PaymentRefunded,
    ShipmentCancelled,
    ShipmentCreated,
    ShipmentFailed,
    StockReleased,
    StockReservationFailed,
    StockReserved,
    StockShipped,
)
from shared.messaging import metrics
from shared.messaging.timers import Decided, Timer


def advance_order(
    event: Event, uow: OrderUnitOfWork, envelope: Envelope
) -> list[OrderCompleted | OrderCancelled]:
    order = uow.orders.get(event.order_id)
    uow.history.record(event.order_id, envelope, _detail(event))
    order, ended = domain.decide(domain.learn(order, event))
    uow.orders.save(order)
    return [ended] if ended else []


def deadlines(timeout: timedelta) -> Timer:
    """The saga's deadline: an order still open `timeout` after its first fact is cancelled."""

    def cancel_overdue_orders(uow: OrderUnitOfWork, limit: int) -> list[Decided[OrderCancelled]]:
        decided: list[Decided[OrderCancelled]] = []
        for order, correlation_id, traceparent in uow.orders.overdue(timeout, limit):
            order, ended = domain.time_out(order)
            uow.orders.save(order)
            if ended is not None:
                decided.append(Decided(ended, correlation_id, traceparent))
        return decided

    return Timer("order deadlines", cancel_overdue_orders)  # type: ignore[arg-type]


def measure_open_sagas(uow: OrderUnitOfWork, limit: int) -> list[Decided[Never]]:
    """How many sagas are open and the oldest's age, for the metrics (a timer deciding nothing)."""
    count, oldest = uow.orders.open_sagas()
    metrics.SAGAS_OPEN.set(count)
    metrics.SAGA_OLDEST_OPEN_SECONDS.set(oldest)
    return []


OPEN_SAGAS = Timer("open sagas", measure_open_sagas, every=5.0)  # type: ignore[arg-type]


def timers(timeout: timedelta) -> list[Timer]:
    """What the service does as time passes (its composition root runs these; the flow map reads them)."""
    return [deadlines(timeout), OPEN_SAGAS]


def the_order(event: Event, uow: OrderUnitOfWork, envelope: Envelope) -> None:
    """The order every fact is about, created by its first with that fact's correlation id."""
    uow.orders.want_one(event.order_id, correlation_id=envelope.correlation_id)


def _detail(event: Event) -> str:
    """One readable line for the history."""
    fields = event.model_dump(exclude={"order_id"}, mode="json")
    return ", ".join(f"{k}={v}" for k, v in fields.items() if k not in ("items", "shipping_address", "lines"))


HANDLERS = {
    event_type: advance_order
    for event_type in (
        OrderPlaced,
        PaymentCompleted,
        PaymentFailed,
        PaymentRefunded,
        StockReserved,
        StockReservationFailed,
        StockReleased,
        StockShipped,
        ShipmentCreated,
        ShipmentFailed,
        ShipmentCancelled,
    )
}
# What each handler reads, prefetched for the whole batch before any of them runs.
NEEDS = dict.fromkeys(HANDLERS, the_order)
PUBLISHES = [OrderCompleted, OrderCancelled]
