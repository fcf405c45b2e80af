"""A service the broker refuses, its login or one of its grants, says so in its health instead of
looking well while it consumes nothing (librdkafka retries refusals for ever, as errors only)."""

from __future__ import annotations

import threading

import httpx
import pytest

from shared.messaging.runtime import Service
from tests.runtime.app import service_definition
from tests.runtime.test_service import free_port
from tests.waiting import until


def health_of(port: int) -> dict:
    return httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).json()


@pytest.mark.parametrize("refused", ["login", "group"])
def test_a_refused_service_reports_itself_unhealthy_and_why(settings, database, topics, unique, refused):
    port = free_port()
    if refused == "login":
        principal, settings = "admin", settings.model_copy(update={"kafka_admin_password": "not-it"})
    else:  # a real principal, in a group and on topics its ACLs do not name
        principal = "shipping"
    definition = service_definition(
        topics, unique, database_url=database.url, schema=database.role, health_port=port,
        kafka_principal=principal,
    )  # fmt: skip
    service = Service(definition, settings)
    thread = threading.Thread(target=service.run)
    thread.start()
    try:
        until(lambda: health_of(port).get("kafka_refused"), 30, "the refusal reported")
        health = health_of(port)
        assert health["healthy"] is False
        expected = "Authentication failed" if refused == "login" else "authorization failed"
        assert expected.lower() in health["kafka_refused"].lower(), health["kafka_refused"]
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 503
    finally:
        service.stop.set()
        thread.join(60)
    assert not thread.is_alive()
