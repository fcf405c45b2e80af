"""No stock ever goes negative, also when many orders for the same SKU are reserved at the same time."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from decimal import Decimal
from uuid import uuid4

from sqlalchemy import create_engine, text

from services.inventory.handlers import HANDLERS, NEEDS
from services.inventory.storage import InventoryUnitOfWork
from services.seed import seed_stock
from shared.contracts import Envelope, OrderPlaced, PaymentCompleted
from shared.migrations import migrate
from tests.services.handling import handle


def envelope(event_type: str) -> Envelope:
    return Envelope(
        event_id=uuid4(),
        event_type=event_type,
        schema_version=1,
        occurred_at=datetime.now(UTC),
        source="test",
        correlation_id=uuid4(),
    )


def test_concurrent_reservations_of_one_sku_never_oversell(settings, unique):
    url = settings.database_url("inventory")
    migrate("inventory", url)
    sku, stocked, orders = f"SKU-{unique}", 20, 60
    seed_stock(url, {sku: stocked})
    engine = create_engine(url, pool_size=8)

    placed = [
        OrderPlaced.model_validate(
            {
                "order_id": uuid4(),
                "customer_id": "C-1",
                "total": Decimal("1.00"),
                "currency": "EUR",
                "items": [{"sku": sku, "quantity": 1, "unit_price": Decimal("1.00")}],
                "shipping_address": {
                    "recipient": "R",
                    "street": "S",
                    "city": "C",
                    "postal_code": "1",
                    "country": "DE",
                },
            }
        )
        for _ in range(orders)
    ]
    with engine.begin() as conn:
        handle(conn, InventoryUnitOfWork, HANDLERS, NEEDS, [(o, envelope("OrderPlaced")) for o in placed])

    outcomes: list[str] = []
    start = threading.Barrier(8)

    def worker(batch: list[OrderPlaced]) -> None:
        start.wait()
        for order in batch:
            paid = PaymentCompleted(
                order_id=order.order_id,
                payment_id=uuid4(),
                customer_id="C-1",
                amount=Decimal("1.00"),
                currency="EUR",
            )
            with engine.begin() as conn:
                decided = handle(
                    conn, InventoryUnitOfWork, HANDLERS, NEEDS, [(paid, envelope("PaymentCompleted"))]
                )
                outcomes.extend(e.type_name() for e in decided)

    threads = [threading.Thread(target=worker, args=(placed[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    with engine.connect() as conn:
        available, reserved = conn.execute(
            text("SELECT available, reserved FROM stock WHERE sku = :sku"), {"sku": sku}
        ).one()
    engine.dispose()
    assert outcomes.count("StockReserved") == stocked
    assert outcomes.count("StockReservationFailed") == orders - stocked
    assert (available, reserved) == (0, stocked)
