import pytest


@pytest.fixture(autouse=True)
def _needs_the_stack(stack):
    """Every test here talks to the real stack."""
