"""`python -m services.seed` (`make seed`): migrate every service and load the demo's reference data.

Idempotent: what is missing is added; customers and SKUs that exist keep their balance and stock
(money and units appear only through the saga's own refunds and releases). Every path of the saga
can be driven with this data:

    customer C-1000 ... C-1009   1000.00 EUR each      -> payments succeed
    customer C-BROKE             0.50 EUR              -> PaymentFailed: insufficient funds
    customer C-BLOCKED           blocked               -> PaymentFailed: customer is blocked
    customer C-LOAD, SKU-LOAD    (almost) unlimited    -> for `shopctl load`
    SKU-MUG, SKU-TEA, SKU-BOOK   1000 units each       -> reservations succeed
    SKU-RARE                     1 unit                -> the second order fails: insufficient stock
    any other SKU                unknown               -> StockReservationFailed
    countries DE FR NL BE AT IT ES PL DK SE IE PT      -> anything else: ShipmentFailed
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal

from sqlalchemy import create_engine
from sqlalchemy.engine import URL

from services.inventory.storage import add_stock
from services.payment.domain import Customer
from services.payment.storage import add_customers
from services.shipping.storage import serve_countries
from shared.migrations import migrate
from shared.settings import SERVICES, Settings, get_settings

CUSTOMERS = [
    *(Customer(f"C-{n}", Decimal("1000.00")) for n in range(1000, 1010)),
    Customer("C-BROKE", Decimal("0.50")),
    Customer("C-BLOCKED", Decimal("1000.00"), blocked=True),
    Customer("C-LOAD", Decimal("9999999999.00")),  # for `shopctl load`
]
STOCK = {"SKU-MUG": 1000, "SKU-TEA": 1000, "SKU-BOOK": 1000, "SKU-RARE": 1, "SKU-LOAD": 1_000_000_000}
COUNTRIES = ["DE", "FR", "NL", "BE", "AT", "IT", "ES", "PL", "DK", "SE", "IE", "PT"]


def seed_customers(url: URL, customers: Iterable[Customer]) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        add_customers(conn, customers)
    engine.dispose()


def seed_stock(url: URL, stock: Mapping[str, int]) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        add_stock(conn, stock)
    engine.dispose()


def seed_countries(url: URL, countries: Iterable[str]) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        serve_countries(conn, countries)
    engine.dispose()


def seed(settings: Settings) -> None:
    for service in SERVICES:
        migrate(service, settings.database_url(service))
    seed_customers(settings.database_url("payment"), CUSTOMERS)
    seed_stock(settings.database_url("inventory"), STOCK)
    seed_countries(settings.database_url("shipping"), COUNTRIES)


if __name__ == "__main__":
    seed(get_settings())
    print(f"seeded {len(CUSTOMERS)} customers, {len(STOCK)} SKUs, {len(COUNTRIES)} countries")
