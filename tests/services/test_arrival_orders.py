"""Each service's handlers, on its real schema: the facts of one order arrive from different topics in
any order, and may come twice (a redelivery the runtime did not catch, e.g. after its records expired);
the effects happen exactly once whatever the order.

The runtime's handled-event records would absorb a plain redelivery; here every repeat is a *new*
event (another event id) saying the same thing, which only the handlers' own state can absorb.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from types import ModuleType
from uuid import uuid4

import pytest
from sqlalchemy import Engine, create_engine, text

from services.inventory import handlers as inventory
from services.inventory.storage import InventoryUnitOfWork
from services.payment import handlers as payment
from services.payment.domain import Customer
from services.payment.storage import PaymentUnitOfWork
from services.seed import seed_countries, seed_customers, seed_stock
from services.shipping import handlers as shipping
from services.shipping.storage import ShippingUnitOfWork
from shared.contracts import (
    Envelope,
    Event,
    OrderCancelled,
    OrderPlaced,
    PaymentCompleted,
    ShipmentCreated,
    ShipmentFailed,
    StockLine,
    StockReservationFailed,
    StockReserved,
)
from shared.migrations import migrate
from tests.services.handling import handle


def envelope(event: Event) -> Envelope:
    return Envelope(
        event_id=uuid4(),
        event_type=event.type_name(),
        schema_version=1,
        occurred_at=datetime.now(UTC),
        source="test",
        correlation_id=uuid4(),
    )


def order_placed(customer: str, sku: str, quantity: int, country: str = "DE") -> OrderPlaced:
    return OrderPlaced.model_validate(
        {
            "order_id": uuid4(),
            "customer_id": customer,
            "items": [{"sku": sku, "quantity": quantity, "unit_price": Decimal("2.50")}],
            "total": Decimal("2.50") * quantity,
            "currency": "EUR",
            "shipping_address": {
                "recipient": "R", "street": "S", "city": "C", "postal_code": "1", "country": country,
            },
        }
    )  # fmt: skip


@pytest.fixture(params=["message by message", "in one batch"])
def deliver(request) -> Callable[[Engine, Callable, ModuleType, list[Event]], Counter[str]]:
    """The facts each in a transaction of its own, or all in one batch's: the end state is the same."""

    def run(engine: Engine, uow: Callable, service: ModuleType, facts: list[Event]) -> Counter[str]:
        batches = [[f] for f in facts] if request.param == "message by message" else [facts]
        emitted: Counter[str] = Counter()
        for batch in batches:
            with engine.begin() as conn:
                decided = handle(
                    conn, uow, service.HANDLERS, service.NEEDS, [(f, envelope(f)) for f in batch]
                )
                emitted.update(e.type_name() for e in decided)
        return emitted

    return run


@pytest.fixture(scope="module")
def engines(settings) -> dict[str, Engine]:
    out = {}
    for service in ("inventory", "payment", "shipping"):
        url = settings.database_url(service)
        migrate(service, url)
        out[service] = create_engine(url)
    yield out
    for engine in out.values():
        engine.dispose()


@pytest.mark.parametrize("arrival", list(itertools.permutations(range(4))))
def test_inventory_reserves_once_and_releases_once_whatever_the_order_of_placed_and_paid(
    settings, engines, unique, arrival, deliver
):
    sku = f"SKU-{unique}"
    seed_stock(settings.database_url("inventory"), {sku: 10})
    order = order_placed("C-1", sku, 3)
    paid = PaymentCompleted(
        order_id=order.order_id, payment_id=uuid4(), customer_id="C-1", amount=order.total, currency="EUR"
    )
    # OrderPlaced and PaymentCompleted come from two topics, each twice: every interleaving.
    facts = [order, paid, order, paid]
    emitted = deliver(engines["inventory"], InventoryUnitOfWork, inventory, [facts[i] for i in arrival])
    assert emitted == Counter({"StockReserved": 1})
    assert stock(engines["inventory"], sku) == (7, 3)

    failed = ShipmentFailed(order_id=order.order_id, reason="address not served")
    emitted = deliver(engines["inventory"], InventoryUnitOfWork, inventory, [failed, failed])
    assert emitted == Counter({"StockReleased": 1})
    assert stock(engines["inventory"], sku) == (10, 0)


def test_inventory_ships_a_reservation_once_and_never_releases_what_shipped(
    settings, engines, unique, deliver
):
    sku = f"SKU-{unique}"
    seed_stock(settings.database_url("inventory"), {sku: 10})
    order = order_placed("C-1", sku, 3)
    paid = PaymentCompleted(
        order_id=order.order_id, payment_id=uuid4(), customer_id="C-1", amount=order.total, currency="EUR"
    )
    shipped = ShipmentCreated(
        order_id=order.order_id, shipment_id=uuid4(), tracking_number="TRK-1", country="DE"
    )
    failed = ShipmentFailed(order_id=order.order_id, reason="address not served")
    facts = [order, paid, shipped, shipped, failed]
    emitted = deliver(engines["inventory"], InventoryUnitOfWork, inventory, facts)
    assert emitted == Counter({"StockReserved": 1, "StockShipped": 1})
    assert stock(engines["inventory"], sku) == (7, 0)


@pytest.mark.parametrize("country", ["DE", "US"])
@pytest.mark.parametrize("arrival", list(itertools.permutations(range(4))))
def test_shipping_decides_once_whatever_the_order_of_placed_and_reserved(
    engines, settings, unique, arrival, country, deliver
):
    seed_countries(settings.database_url("shipping"), ["DE"])
    order = order_placed("C-1", f"SKU-{unique}", 1, country)
    reserved = StockReserved(order_id=order.order_id, lines=(StockLine(sku=f"SKU-{unique}", quantity=1),))
    facts = [order, reserved, order, reserved]
    emitted = deliver(engines["shipping"], ShippingUnitOfWork, shipping, [facts[i] for i in arrival])
    assert emitted == Counter({"ShipmentCreated" if country == "DE" else "ShipmentFailed": 1})
    with engines["shipping"].connect() as conn:
        shipments = conn.execute(
            text("SELECT count(*) FROM shipments WHERE order_id = :o"), {"o": order.order_id}
        ).scalar()
    assert shipments == (1 if country == "DE" else 0)


def test_payment_charges_once_and_refunds_once_however_often_and_whichever_failure_says_so(
    settings, engines, unique, deliver
):
    customer = f"C-{unique}"
    seed_customers(settings.database_url("payment"), [Customer(customer, Decimal("100.00"))])
    order = order_placed(customer, "SKU-X", 4)  # 10.00
    no_stock = StockReservationFailed(order_id=order.order_id, reason="insufficient stock", sku="SKU-X")
    not_shipped = ShipmentFailed(order_id=order.order_id, reason="address not served")

    emitted = deliver(engines["payment"], PaymentUnitOfWork, payment, [order, order])
    assert emitted == Counter({"PaymentCompleted": 1})
    assert balance(engines["payment"], customer) == Decimal("90.00")

    emitted = deliver(
        engines["payment"], PaymentUnitOfWork, payment, [no_stock, not_shipped, no_stock, order]
    )
    assert emitted == Counter({"PaymentRefunded": 1})
    assert balance(engines["payment"], customer) == Decimal("100.00")


# The saga's deadline at every point: OrderCancelled (the order timed out) comes before, between or
# after the facts each service hears, each twice; whatever the order, a cancelled order ends holding
# no charge, no reservation and no active shipment.


def cancelled(order: OrderPlaced) -> OrderCancelled:
    return OrderCancelled(order_id=order.order_id, reason="timed out waiting for ShipmentCreated")


@pytest.mark.parametrize("arrival", list(itertools.permutations(range(4))))
def test_inventory_holds_nothing_for_a_cancelled_order_whatever_the_order_of_its_facts(
    settings, engines, unique, arrival, deliver
):
    sku = f"SKU-{unique}"
    seed_stock(settings.database_url("inventory"), {sku: 10})
    order = order_placed("C-1", sku, 3)
    paid = PaymentCompleted(
        order_id=order.order_id, payment_id=uuid4(), customer_id="C-1", amount=order.total, currency="EUR"
    )
    shipped = ShipmentCreated(
        order_id=order.order_id, shipment_id=uuid4(), tracking_number="TRK-1", country="DE"
    )
    facts = [order, paid, shipped, cancelled(order)]
    emitted = deliver(engines["inventory"], InventoryUnitOfWork, inventory, [facts[i] for i in arrival] * 2)
    assert stock_levels(engines["inventory"], sku) == (10, 0, 0)
    assert emitted["StockReserved"] == emitted["StockReleased"] <= 1
    assert emitted["StockShipped"] <= emitted["StockReserved"]


@pytest.mark.parametrize("arrival", list(itertools.permutations(range(3))))
def test_shipping_ships_nothing_for_a_cancelled_order_whatever_the_order_of_its_facts(
    settings, engines, unique, arrival, deliver
):
    seed_countries(settings.database_url("shipping"), ["DE"])
    order = order_placed("C-1", f"SKU-{unique}", 1, "DE")
    reserved = StockReserved(order_id=order.order_id, lines=(StockLine(sku=f"SKU-{unique}", quantity=1),))
    facts = [order, reserved, cancelled(order)]
    emitted = deliver(engines["shipping"], ShippingUnitOfWork, shipping, [facts[i] for i in arrival] * 2)
    # A shipment is created only where the cancellation came last, and then it is called off.
    cancelled_last = arrival[-1] == 2
    expected = {"ShipmentCreated": 1, "ShipmentCancelled": 1} if cancelled_last else {}
    assert emitted == Counter(expected)
    with engines["shipping"].connect() as conn:
        state = conn.execute(
            text("SELECT state FROM consignments WHERE order_id = :o"), {"o": order.order_id}
        ).scalar_one()
    assert state == "cancelled"


@pytest.mark.parametrize("cancelled_at", [0, 1, 2])
def test_payment_holds_no_charge_for_a_cancelled_order_however_late_it_was_placed(
    settings, engines, unique, cancelled_at, deliver
):
    customer = f"C-{unique}"
    seed_customers(settings.database_url("payment"), [Customer(customer, Decimal("100.00"))])
    order = order_placed(customer, "SKU-X", 4)  # 10.00
    facts: list[Event] = [order, order]
    facts.insert(cancelled_at, cancelled(order))
    emitted = deliver(engines["payment"], PaymentUnitOfWork, payment, [*facts, cancelled(order)])
    charged = cancelled_at > 0  # placed before the cancellation: charged, then refunded
    assert emitted == Counter({"PaymentCompleted": 1, "PaymentRefunded": 1} if charged else {})
    assert balance(engines["payment"], customer) == Decimal("100.00")


def stock_levels(engine: Engine, sku: str) -> tuple[int, int, int]:
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT available, reserved, shipped FROM stock WHERE sku = :s"), {"s": sku}
        ).one()
    return row.available, row.reserved, row.shipped


def stock(engine: Engine, sku: str) -> tuple[int, int]:
    with engine.connect() as conn:
        row = conn.execute(text("SELECT available, reserved FROM stock WHERE sku = :s"), {"s": sku}).one()
    return row.available, row.reserved


def balance(engine: Engine, customer: str) -> Decimal:
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT balance FROM customers WHERE customer_id = :c"), {"c": customer}
        ).scalar_one()
