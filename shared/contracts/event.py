"""The base of every event: an immutable fact about one order."""

from __future__ import annotations

from typing import ClassVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict


class Event(BaseModel):
    """A fact, named in the past tense, owned (published) by one service.

    Subclasses name their owner; the Avro record name is `shop.<owner>.<ClassName>` and the schema
    lives in `schemas/<owner>/<ClassName>.avsc`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    owner: ClassVar[str]

    order_id: UUID

    @classmethod
    def type_name(cls) -> str:
        return cls.__name__

    @classmethod
    def record_name(cls) -> str:
        return f"shop.{cls.owner}.{cls.__name__}"
