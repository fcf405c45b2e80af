"""One settings model for services, CLI, local stack and tests.

Values come, last one winning, from: the defaults below (which reach the local stack on the usual
ports), `.env.example` (committed dev credentials), `.env` (your own overrides, git-ignored) and the
process environment. Names are the ecosystem's own: `KAFKA_BOOTSTRAP_SERVERS`, `SCHEMA_REGISTRY_URL`,
OpenTelemetry's `OTEL_*`, and one database URL per service.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    # Imported where used: SQLAlchemy is a fifth of a CLI command's start-up, and shopctl's read-only
    # commands reach PostgreSQL without it (libpq_dsn_of).
    from sqlalchemy.engine import URL

ServiceName = Literal["order", "inventory", "payment", "shipping", "timeline"]
# The saga's services: each owns an events topic.
SERVICES: tuple[ServiceName, ...] = ("order", "inventory", "payment", "shipping")
# Every process on the runtime, each with its own schema, role, consumer group and dead-letter topic:
# the four services, and the timeline read model that the operator's CLI queries.
PROCESSES: tuple[ServiceName, ...] = (*SERVICES, "timeline")
# Where each serves /health and /metrics when HEALTH_PORT does not say otherwise.
HEALTH_PORTS: dict[ServiceName, int] = {
    "order": 9101, "inventory": 9102, "payment": 9103, "shipping": 9104, "timeline": 9105,
}  # fmt: skip


# The checkout's root: its .env files apply wherever a command is run from. (An installed copy without
# them reads the environment alone.)
REPO_ROOT = Path(__file__).resolve().parents[1]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=(REPO_ROOT / ".env.example", REPO_ROOT / ".env"),
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    kafka_bootstrap_servers: str = "localhost:9092"
    # The local stack's registry (Apicurio) serves Confluent's API under this path; Confluent's own
    # registry (docker compose) serves it at the root: http://localhost:8081.
    schema_registry_url: str = "http://localhost:8081/apis/ccompat/v7"

    otel_exporter_otlp_endpoint: str = "http://localhost:4317"
    otel_service_name: str | None = None
    # Share of traces kept, decided where a trace starts (parent-based ratio sampling).
    otel_traces_sampler_arg: float = Field(default=1.0, ge=0.0, le=1.0)
    jaeger_query_url: str = "http://localhost:16686"

    # Superuser connection, used only to provision databases, schemas and roles.
    database_admin_url: str = Field(default="postgresql+psycopg://postgres@localhost:5432/postgres")
    order_database_url: str | None = None
    inventory_database_url: str | None = None
    payment_database_url: str | None = None
    shipping_database_url: str | None = None
    timeline_database_url: str | None = None
    # /health and /metrics of a service process; containers listen on every interface.
    health_port: int | None = None
    health_host: str = "127.0.0.1"

    # Where every database URL points, when set ("host:port"). Containers set it to reach the
    # `postgres` service while .env.example keeps the host view (localhost:5432).
    database_host: str | None = None

    @model_validator(mode="after")
    def _every_service_has_a_database(self) -> Settings:
        missing = [s for s in PROCESSES if getattr(self, f"{s}_database_url") is None]
        if missing:
            names = ", ".join(f"{s.upper()}_DATABASE_URL" for s in missing)
            raise ValueError(f"{names} not set (see .env.example)")
        return self

    def database_url(self, service: ServiceName) -> URL:
        """The SQLAlchemy URL of one service's own database role."""
        return self._located(getattr(self, f"{service}_database_url"))

    def admin_database_url(self) -> URL:
        return self._located(self.database_admin_url)

    def libpq_dsn_of(self, service: ServiceName) -> str:
        """One service role's libpq connection string, the same place as database_url(service)."""
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        raw: str = getattr(self, f"{service}_database_url")
        params = conninfo_to_dict("postgresql://" + raw.partition("://")[2])  # without the +driver
        if self.database_host:
            host, _, port = self.database_host.partition(":")
            params["host"] = host
            if port:
                params["port"] = port
        return make_conninfo(**params)

    def _located(self, raw: str) -> URL:
        from sqlalchemy.engine import make_url

        url = make_url(raw)
        if self.database_host:
            host, _, port = self.database_host.partition(":")
            url = url.set(host=host, port=int(port) if port else url.port)
        return url


@cache
def get_settings() -> Settings:
    """The process's settings, read once at start-up."""
    return Settings()


def libpq_dsn(url: URL) -> str:
    """A plain libpq connection string (for psycopg) from a SQLAlchemy URL."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)
