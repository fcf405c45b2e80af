"""Field types shared by the contracts, each with the Avro type it maps to."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import Field

# Exact money: Avro decimal(12, 2), never a float.
Money = Annotated[Decimal, Field(max_digits=12, decimal_places=2, ge=0)]
Quantity = Annotated[int, Field(ge=1, le=1_000_000)]
CountryCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
Text = Annotated[str, Field(min_length=1, max_length=500)]
# Identifiers as the storefront issues them: a customer is C-..., a SKU a short code of letters,
# digits and dashes. Checked wherever an event is decoded, so a malformed one never reaches a service.
CustomerId = Annotated[str, Field(pattern=r"^C-[A-Za-z0-9-]{1,40}$")]
Sku = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,39}$")]
