"""The infrastructure of docker-compose.yml, brought up by testcontainers (needs a Docker engine).

Used only when SHOP_TESTCONTAINERS=1. Ports are the compose file's own; the settings are pointed at
them, and topics, roles and schemas are provisioned by the same code the local stack uses.
"""

from __future__ import annotations

from pathlib import Path

from testcontainers.compose import DockerCompose

REPO = Path(__file__).resolve().parents[1]
# The gateway gives the host the registry at the local stack's path (.env.example's URL).
INFRASTRUCTURE = ["kafka", "schema-registry", "schema-registry-gateway", "postgres", "jaeger"]


def start() -> DockerCompose:
    compose = DockerCompose(REPO, compose_file_name="docker-compose.yml", services=INFRASTRUCTURE, wait=True)
    compose.start()

    from shared.provision import ensure_roles_and_schemas, ensure_topics
    from shared.settings import get_settings

    get_settings.cache_clear()
    settings = get_settings()
    ensure_topics(settings.kafka_client("admin"))
    ensure_roles_and_schemas(settings)
    return compose
