"""Building an OrderPlaced from what a person types: customer, items, country."""

from __future__ import annotations

import re
from decimal import Decimal
from uuid import uuid4

from pydantic import ValidationError

from services.shopctl.errors import bad_input
from shared.contracts import OrderPlaced

# The storefront's price list; any other SKU needs its price given: SKU:QTY@PRICE.
CATALOGUE = {
    "SKU-MUG": Decimal("9.99"),
    "SKU-TEA": Decimal("4.50"),
    "SKU-BOOK": Decimal("24.00"),
    "SKU-RARE": Decimal("99.00"),
    "SKU-LOAD": Decimal("1.00"),
}
CUSTOMER = re.compile(r"^C-[A-Za-z0-9-]{1,40}$")
ITEM = re.compile(
    r"^(?P<sku>[A-Za-z0-9][A-Za-z0-9-]{0,39}):(?P<qty>[+-]?\d+)(?:@(?P<price>\d+(?:\.\d{1,2})?))?$"
)
COUNTRY = re.compile(r"^[A-Z]{2}$")


def parse_item(text: str) -> tuple[str, int, Decimal]:
    match = ITEM.match(text)
    if not match:
        raise bad_input(f"--item {text!r}: expected SKU:QTY or SKU:QTY@PRICE, e.g. SKU-MUG:2 or SKU-X:1@3.50")
    sku, quantity = match["sku"], int(match["qty"])
    if quantity <= 0:
        raise bad_input(f"--item {text!r}: quantity must be a positive whole number, not {quantity}")
    price = Decimal(match["price"]) if match["price"] else CATALOGUE.get(sku)
    if price is None:
        known = ", ".join(CATALOGUE)
        raise bad_input(
            f"--item {text!r}: unknown SKU {sku} (known: {known}); give its price as {sku}:{quantity}@PRICE"
        )
    return sku, quantity, price


def order_placed(customer: str, items: list[str], country: str) -> OrderPlaced:
    if not CUSTOMER.match(customer):
        raise bad_input(
            f"--customer {customer!r}: expected C- followed by letters, digits or dashes, e.g. C-1000"
        )
    if not items:
        raise bad_input("--item: an order needs at least one item")
    if not COUNTRY.match(country):
        raise bad_input(f"--country {country!r}: expected an ISO 3166-1 alpha-2 code such as DE")
    lines = [parse_item(item) for item in items]
    try:
        return OrderPlaced.model_validate(
            {
                "order_id": uuid4(),
                "customer_id": customer,
                "items": [{"sku": s, "quantity": q, "unit_price": p} for s, q, p in lines],
                "total": sum((p * q for _, q, p in lines), start=Decimal("0.00")),
                "currency": "EUR",
                "shipping_address": {
                    "recipient": "Ada Lovelace",
                    "street": "12 St James's Square",
                    "city": "London",
                    "postal_code": "SW1Y 4JH",
                    "country": country,
                },
            }
        )
    except ValidationError as exc:
        raise bad_input(f"order: {exc.errors()[0]['msg']}") from exc
