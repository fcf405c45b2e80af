"""The end-to-end tests drive the four running services through Kafka and read their schemas.

Services already running (`make run`, or docker compose) are used as they are; otherwise the session
starts one instance of each from this checkout and stops them at the end.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.payment.domain import Customer
from services.seed import seed, seed_customers, seed_stock
from shared.contracts import OrderPlaced
from shared.messaging.publisher import EventPublisher
from tests.e2e.support import EventTap, Schemas, Storefront, every_process_running


@pytest.fixture(scope="session")
def services(stack, settings, tmp_path_factory):
    with every_process_running(tmp_path_factory.mktemp("services")):
        seed(settings)  # the demo data the CLI and load tests use
        yield


@pytest.fixture(scope="session")
def tap(services, settings):
    tap = EventTap(settings)
    yield tap
    tap.close()


@pytest.fixture(scope="session")
def storefront(services, settings, tracer_provider) -> Storefront:
    return Storefront(EventPublisher(settings, "storefront", [OrderPlaced], "storefront"))


@pytest.fixture(scope="session")
def schemas(settings) -> Schemas:
    return Schemas(settings)


@pytest.fixture
def customer(settings, unique) -> str:
    """A customer of this test's own with 100.00 EUR."""
    customer_id = f"C-{unique}"
    seed_customers(settings.database_url("payment"), [Customer(customer_id, Decimal("100.00"))])
    return customer_id


@pytest.fixture
def sku(settings, unique) -> str:
    """A SKU of this test's own with 10 units."""
    sku = f"SKU-{unique}"
    seed_stock(settings.database_url("inventory"), {sku: 10})
    return sku
