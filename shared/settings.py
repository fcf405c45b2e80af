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


# What a Kafka or registry password may not contain (Settings._passwords_fit_where_they_go).
_SYNTAX = frozenset('"\\,]$')

# The checkout's root: its .env files apply wherever a command is run from. (An installed copy without
# them reads the environment alone.)
REPO_ROOT = Path(__file__).resolve().parents[1]


class Settings(BaseSettings):
    # Fields holding a secret (passwords, URLs with one) are left out of its repr: a failed assertion
    # or a log line that prints the settings must not print them.
    model_config = SettingsConfigDict(
        env_file=(REPO_ROOT / ".env.example", REPO_ROOT / ".env"),
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
        hide_input_in_errors=True,  # a refused setting's error must not print every password read
    )

    kafka_bootstrap_servers: str = "localhost:9092"
    # Every client authenticates (SASL/SCRAM) as the principal of its process (shared.access); the
    # broker refuses anything its ACLs do not allow. One password per principal: a process is given
    # its own (the dev stacks hand every process all of them, from .env.example).
    kafka_security_protocol: Literal["SASL_PLAINTEXT", "SASL_SSL"] = "SASL_SSL"
    # The broker's configuration names this one (server.properties): it is not a choice of the client.
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512"] = "SCRAM-SHA-512"
    # The CA that signed the broker's certificate, for SASL_SSL (PEM). A relative path is taken from
    # the repository's root, so that the same .env.example serves every working directory.
    kafka_ssl_ca_location: str | None = None
    kafka_admin_password: str | None = Field(default=None, repr=False)
    kafka_order_password: str | None = Field(default=None, repr=False)
    kafka_inventory_password: str | None = Field(default=None, repr=False)
    kafka_payment_password: str | None = Field(default=None, repr=False)
    kafka_shipping_password: str | None = Field(default=None, repr=False)
    kafka_timeline_password: str | None = Field(default=None, repr=False)
    kafka_operator_password: str | None = Field(default=None, repr=False)
    kafka_storefront_password: str | None = Field(default=None, repr=False)
    kafka_schema_registry_password: str | None = Field(default=None, repr=False)
    kafka_ui_password: str | None = Field(default=None, repr=False)
    # The schema registry's logins (shared.access.REGISTRY_ROLES), one password each.
    schema_registry_provisioning_password: str | None = Field(default=None, repr=False)
    schema_registry_storefront_password: str | None = Field(default=None, repr=False)
    schema_registry_reader_password: str | None = Field(default=None, repr=False)
    # The broker's controller listener (PLAIN, a static user in its JAAS line): the broker's alone.
    kafka_controller_password: str | None = Field(default=None, repr=False)
    # The broker's keystore (its TLS key and certificate, deploy/tls/issue.sh): the broker's alone.
    kafka_keystore_password: str | None = Field(default=None, repr=False)
    # The local stack's registry (Apicurio) serves Confluent's API under this path; Confluent's own
    # registry (docker compose) serves it at the root: http://localhost:8081.
    schema_registry_url: str = "http://localhost:8081/apis/ccompat/v7"

    otel_exporter_otlp_endpoint: str = "http://localhost:4317"
    otel_service_name: str | None = None
    # Share of traces kept, decided where a trace starts (parent-based ratio sampling).
    otel_traces_sampler_arg: float = Field(default=1.0, ge=0.0, le=1.0)
    jaeger_query_url: str = "http://localhost:16686"
    # Prometheus, scraping every process's /metrics (both stacks; README: Components, Dashboards).
    prometheus_url: str = "http://localhost:9090"

    # Superuser connection, used only to provision databases, schemas and roles.
    database_admin_url: str = Field(
        default="postgresql+psycopg://postgres@localhost:5432/postgres", repr=False
    )
    order_database_url: str | None = Field(default=None, repr=False)
    inventory_database_url: str | None = Field(default=None, repr=False)
    payment_database_url: str | None = Field(default=None, repr=False)
    shipping_database_url: str | None = Field(default=None, repr=False)
    timeline_database_url: str | None = Field(default=None, repr=False)
    # SELECT only, on the timeline's schema: what shopctl reads the read model with.
    timeline_reader_database_url: str = Field(
        default="postgresql+psycopg://timeline_reader@localhost:5432/shop", repr=False
    )
    # How long an order may stay open after the order service first heard of it: then it is
    # cancelled, naming the fact it waited for, and every service undoes its part (issue: sagas end).
    order_saga_timeout_seconds: float = Field(default=30.0, gt=0)

    # /health and /metrics of a service process; containers listen on every interface.
    health_port: int | None = None
    health_host: str = "127.0.0.1"
    # Where shopctl finds each process's /health and /metrics: "{process}" stands for the process's
    # name (compose: each process is a container of that name; on a host, all are on loopback).
    health_probe_host: str = "127.0.0.1"

    def health_url(self, process: ServiceName, path: str) -> str:
        host = self.health_probe_host.replace("{process}", process)
        return f"http://{host}:{HEALTH_PORTS[process]}{path}"

    # Where every database URL points, when set ("host:port"). Containers set it to reach the
    # `postgres` service while .env.example keeps the host view (localhost:5432).
    database_host: str | None = None

    # Seconds. Set on every service role by provisioning (ALTER ROLE ... SET), so that no statement,
    # lock wait or abandoned transaction holds a service up (README: Configuration). Lock waits end
    # before statements do (role_timeouts says why).
    database_lock_timeout: float = Field(default=5.0, gt=0)
    database_statement_timeout: float = Field(default=30.0, gt=0)
    # Above the relay's delivery timeout (30 s): it holds its transaction while the broker acknowledges.
    database_idle_in_transaction_timeout: float = Field(default=60.0, gt=0)
    # A migration may rewrite a table: its own, wider bound for statements and lock waits.
    database_migration_timeout: float = Field(default=600.0, gt=0)
    # Every connection (connection_options): how long to wait for the server to answer at all, and when
    # to declare a silent peer dead (keepalive probes after `idle` s, every `interval` s, `count` lost).
    database_connect_timeout: int = Field(default=5, ge=1)
    database_keepalives_idle: int = Field(default=10, ge=1)
    database_keepalives_interval: int = Field(default=5, ge=1)
    database_keepalives_count: int = Field(default=3, ge=1)

    @model_validator(mode="after")
    def _every_service_has_a_database(self) -> Settings:
        missing = [s for s in PROCESSES if getattr(self, f"{s}_database_url") is None]
        if missing:
            names = ", ".join(f"{s.upper()}_DATABASE_URL" for s in missing)
            raise ValueError(f"{names} not set (see .env.example)")
        return self

    @model_validator(mode="after")
    def _passwords_fit_where_they_go(self) -> Settings:
        # Kafka and registry passwords go into JAAS lines, SCRAM format arguments, Jetty's password
        # file and a netrc, each with its own quoting: characters that any of them would read as
        # syntax are refused here, before anything is formatted or sent.
        for name in type(self).model_fields:
            if name.startswith(("kafka_", "schema_registry_")) and name.endswith("_password"):
                value = getattr(self, name)
                if value and (set(value) & _SYNTAX or any(c.isspace() for c in value)):
                    raise ValueError(
                        f"{name.upper()} may not hold whitespace or any of {' '.join(sorted(_SYNTAX))}"
                    )
        return self

    @model_validator(mode="after")
    def _coherent_timeouts(self) -> Settings:
        self.role_timeouts()  # raises if they contradict each other
        return self

    def kafka_client(self, principal: str) -> dict[str, str]:
        """librdkafka's connection and authentication settings for a client acting as `principal`
        (one of shared.access.PRINCIPAL_NAMES)."""
        password = self._password(f"kafka_{principal.replace('-', '_')}_password", f"principal {principal!r}")
        config = {
            "bootstrap.servers": self.kafka_bootstrap_servers,
            "security.protocol": self.kafka_security_protocol,
            "sasl.mechanism": self.kafka_sasl_mechanism,
            "sasl.username": principal,
            "sasl.password": password,
            # Every request is small and waited on: with Nagle's algorithm a request written in more
            # than one piece (TLS records) waits for the peer's delayed ACK, up to 40 ms a hop.
            "socket.nagle.disable": "true",
        }
        if self.kafka_ssl_ca_location:
            config["ssl.ca.location"] = str(REPO_ROOT / self.kafka_ssl_ca_location)  # an absolute one wins
        return config

    def registry_login(self, user: str) -> str:
        """The registry's basic-auth `user:password` for `user` (shared.access.REGISTRY_ROLES)."""
        return f"{user}:{self._password(f'schema_registry_{user}_password', f'registry user {user!r}')}"

    def _password(self, field: str, whose: str) -> str:
        password = getattr(self, field, None)
        if not password:
            raise ValueError(f"{field.upper()} not set: the password of {whose} (see .env.example)")
        return password

    def connection_options(self) -> dict[str, str]:
        """The libpq parameters every connection of every process sets (services, relay, migrations,
        provisioning, seed, shopctl): a server that does not answer, or a peer that vanished without a
        word (a dead host, a dropped NAT entry), fails the connection instead of hanging it."""
        dead_after = self.database_keepalives_idle + self.database_keepalives_interval * (
            self.database_keepalives_count
        )
        return {
            "connect_timeout": str(self.database_connect_timeout),
            "keepalives": "1",
            "keepalives_idle": str(self.database_keepalives_idle),
            "keepalives_interval": str(self.database_keepalives_interval),
            "keepalives_count": str(self.database_keepalives_count),
            # Keepalives only probe an idle socket; data sent and never acknowledged (the server gone
            # mid-request) is bounded by this, in milliseconds, to the same deadline.
            "tcp_user_timeout": str(dead_after * 1000),
        }

    def role_timeouts(self) -> dict[str, str]:
        """The server-side timeouts provisioning sets on each service role, as PostgreSQL values."""
        return role_timeouts(
            statement=self.database_statement_timeout,
            lock=self.database_lock_timeout,
            idle_in_transaction=self.database_idle_in_transaction_timeout,
        )

    def database_url(self, service: ServiceName) -> URL:
        """The SQLAlchemy URL of one service's own database role."""
        return self._located(getattr(self, f"{service}_database_url"))

    def admin_database_url(self) -> URL:
        return self._located(self.database_admin_url)

    def reader_database_url(self) -> URL:
        """The read model's SELECT-only role (provisioning grants it; shopctl reads with it)."""
        return self._located(self.timeline_reader_database_url)

    def reader_dsn(self) -> str:
        return self._libpq_dsn(self.timeline_reader_database_url)

    def libpq_dsn_of(self, service: ServiceName) -> str:
        """One service role's libpq connection string, the same place as database_url(service)."""
        return self._libpq_dsn(getattr(self, f"{service}_database_url"))

    def _libpq_dsn(self, raw: str) -> str:
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        params = conninfo_to_dict("postgresql://" + raw.partition("://")[2])  # without the +driver
        if self.database_host:
            host, _, port = self.database_host.partition(":")
            params["host"] = host
            if port:
                params["port"] = port
        return make_conninfo(**{**self.connection_options(), **params})

    def _located(self, raw: str) -> URL:
        from sqlalchemy.engine import make_url

        url = make_url(raw)
        if self.database_host:
            host, _, port = self.database_host.partition(":")
            url = url.set(host=host, port=int(port) if port else url.port)
        return with_connection_options(url, self)


@cache
def get_settings() -> Settings:
    """The process's settings, read once at start-up."""
    return Settings()


def libpq_dsn(url: URL) -> str:
    """A plain libpq connection string (for psycopg) from a SQLAlchemy URL, its options included."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def with_connection_options(url: URL, settings: Settings | None = None) -> URL:
    """The URL with every connection option it does not set itself (Settings.connection_options):
    the URLs the settings hand out carry them, and engines apply them to any URL they are given.
    psycopg's SQLAlchemy dialect passes a URL's query to libpq as connection parameters."""
    options = (settings or get_settings()).connection_options()
    return url.update_query_dict({**options, **url.query})


def role_timeouts(*, statement: float, lock: float, idle_in_transaction: float) -> dict[str, str]:
    """PostgreSQL's settings for the three timeouts, from seconds (to whole milliseconds).

    A lock wait must end as lock_not_available (55P03, an outage: waited out in place), never be cut
    short by the statement timeout as query_canceled (57014, counted against the message)."""
    if not 0 < lock < statement:
        raise ValueError(
            f"lock timeout ({lock} s) must be above 0 and below the statement timeout ({statement} s): "
            "a lock wait the statement timeout cancels would count against the message"
        )
    if idle_in_transaction <= 0:
        raise ValueError("idle-in-transaction timeout must be above 0 (0 would turn it off)")
    return {
        "statement_timeout": f"{round(statement * 1000)}ms",
        "lock_timeout": f"{round(lock * 1000)}ms",
        "idle_in_transaction_session_timeout": f"{round(idle_in_transaction * 1000)}ms",
    }
