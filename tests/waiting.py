"""Waiting for what happens asynchronously (another process, another consumer, a metrics refresh),
with a deadline: tests never read such state once and never sleep a fixed time instead."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def until(condition: Callable[[], object], timeout: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} not reached within {timeout:.0f}s"
        time.sleep(0.1)


def eventually(read: Callable[[], Any], expected: Any, timeout: float = 30) -> None:
    """Until read() returns expected: e.g. services that hear the same fact settle independently."""
    deadline = time.monotonic() + timeout
    while (got := read()) != expected:
        assert time.monotonic() < deadline, f"still {got!r}, expected {expected!r}"
        time.sleep(0.1)
