"""The saga's deadline against the running order service: an order whose saga cannot go on is cancelled
when ORDER_SAGA_TIMEOUT_SECONDS have passed since its first fact, within five seconds of it, naming
what it waited for."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from uuid import uuid4

import pytest

from shared.contracts import PaymentCompleted
from shared.messaging.publisher import EventPublisher


@pytest.fixture
def operator(services, settings):
    # Publishing in payment's name (the operator may, as for a repair): a fact nobody placed an order for.
    return EventPublisher(settings, None, [PaymentCompleted], "operator")


def test_an_order_whose_saga_cannot_go_on_is_cancelled_at_its_deadline(operator, tap, schemas, settings):
    order_id = uuid4()
    operator.publish(
        PaymentCompleted(
            order_id=order_id, payment_id=uuid4(), customer_id="C-1", amount=Decimal("1.00"), currency="EUR"
        )
    )
    timeout = settings.order_saga_timeout_seconds
    events = tap.wait_for(order_id, "OrderCancelled", timeout=timeout + 30)
    [cancelled] = [e for e in events if e["event_type"] == "OrderCancelled"]
    row = schemas.one("order", "SELECT status, reason, created_at FROM orders WHERE order_id = %s", order_id)
    assert row is not None
    assert row["status"] == "cancelled"
    assert row["reason"] == "timed out waiting for OrderPlaced, StockReserved, ShipmentCreated"
    late = (datetime.fromisoformat(cancelled["occurred_at"]) - row["created_at"]).total_seconds() - timeout
    assert 0 <= late <= 5, f"cancelled {late:.1f} s after the deadline"
