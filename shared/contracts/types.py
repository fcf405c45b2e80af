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
