"""Capped exponential backoff with jitter: retries in place, without busy-looping."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    initial: float = 0.1
    maximum: float = 10.0
    multiplier: float = 2.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number `attempt` (1-based); "full jitter" spreads instances apart."""
        cap = min(self.maximum, self.initial * self.multiplier ** max(0, attempt - 1))
        return random.uniform(cap / 2, cap)
