"""Tests run against whichever stack the environment names (default: the local one on the usual ports).

With SHOP_TESTCONTAINERS=1 (`make test-containers`, needs Docker) the session first brings up the
infrastructure of docker-compose.yml through testcontainers and points the settings at it.
"""

from __future__ import annotations

import faulthandler
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from shared.settings import Settings, get_settings

_compose_stack = None
_stderr_fd = -1  # the real stderr, for the backstop (pytest captures fd 2 while a test runs)


def pytest_configure(config: pytest.Config) -> None:
    global _compose_stack, _stderr_fd
    _stderr_fd = os.dup(2)
    if os.environ.get("SHOP_TESTCONTAINERS") == "1":
        from tests.compose_stack import start

        _compose_stack = start()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The chaos run kills PostgreSQL and Kafka under everything: after every other test, so that
    none meets a connection it broke."""
    items.sort(key=lambda item: item.get_closest_marker("chaos") is not None)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """A backstop behind pytest-timeout, whose signal fails a test only when Python code runs again,
    and only once: a test stuck in C code, or in a teardown after its timeout fired, would hold the
    run until CI's own limit with nothing said. Past twice the timeout, every thread's stack is
    printed and the run ends. (Not faulthandler's timer: pytest cancels it when a test fails.)"""
    marker = item.get_closest_marker("timeout")
    timeout = float(marker.args[0] if marker and marker.args else item.config.getini("timeout") or 0)
    if timeout <= 0:
        yield
        return
    watchdog = threading.Timer(2 * timeout, _give_up, args=(item.nodeid, 2 * timeout))
    watchdog.daemon = True
    watchdog.start()
    try:
        yield
    finally:
        watchdog.cancel()


def _give_up(test: str, after: float) -> None:
    os.write(_stderr_fd, f"\n{test} still running after {after:.0f}s; every thread's stack:\n".encode())
    faulthandler.dump_traceback(file=_stderr_fd, all_threads=True)
    os._exit(3)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _compose_stack is not None:
        _compose_stack.stop()


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def settings() -> Settings:
    return get_settings()


@pytest.fixture(scope="session")
def stack(settings: Settings) -> None:
    """Fail the whole run at once, with what to do, rather than test by test on timeouts."""
    endpoints = {
        "kafka": "//" + settings.kafka_bootstrap_servers.split(",")[0],
        "schema registry": settings.schema_registry_url,
        "jaeger (otlp)": settings.otel_exporter_otlp_endpoint,
        "postgres": settings.admin_database_url().render_as_string(),
    }
    down = []
    for name, url in endpoints.items():
        parts = urlsplit(url)
        if not _reachable(parts.hostname or "localhost", parts.port or 0):
            down.append(f"{name} at {parts.hostname}:{parts.port}")
    if down:
        pytest.exit(
            "stack not reachable: " + ", ".join(down) + ". Start it: `make stack-up` (no Docker) or "
            "`docker compose up -d` (then see README: pointing the tests at compose).",
            returncode=3,
        )


@pytest.fixture(scope="session")
def tracer_provider(settings: Settings):
    """The test process's tracer provider (one per process), sampling everything it starts."""
    from shared.messaging.tracing import configure_tracing

    provider = configure_tracing("tests", settings.otel_exporter_otlp_endpoint, 1.0)
    yield provider
    provider.shutdown()


@pytest.fixture
def unique() -> str:
    """A short unique suffix, so tests never collide with each other or with earlier runs."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def kafka_config(settings: Settings) -> Iterator[dict[str, str]]:
    """The tests' own Kafka clients: the admin principal (super user), unless a test is about rights."""
    yield settings.kafka_client("admin")
