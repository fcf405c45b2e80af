"""The components of the stack: how each is prepared, started and judged healthy."""

from __future__ import annotations

import hashlib
import os
import pwd
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from abc import ABC, abstractmethod
from pathlib import Path
from string import Template
from urllib.parse import urlsplit

import httpx
import psycopg
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from pydantic_settings import BaseSettings, SettingsConfigDict

from localstack import install
from localstack.paths import DEPLOY, OUTSIDE_STATE, REPO, STATE, TLS
from localstack.process import ManagedProcess, port_open
from shared.access import ADMIN, REGISTRY_ROLES
from shared.settings import HEALTH_PORTS, PROCESSES, ServiceName, Settings, libpq_dsn


def _port_of(url_or_hostport: str, default: int) -> int:
    if "://" not in url_or_hostport:
        url_or_hostport = "//" + url_or_hostport.split(",")[0]
    return urlsplit(url_or_hostport).port or default


class StackSettings(BaseSettings):
    """What only the local stack needs, read like the shared settings."""

    model_config = SettingsConfigDict(env_file=(REPO / ".env.example", REPO / ".env"), extra="ignore")
    schema_registry_db_password: str


class Component(ABC):
    name: str
    start_timeout: float = 60
    stop_signal = signal.SIGTERM

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.process = ManagedProcess(
            self.name,
            STATE / "run" / f"{self.name}.pid",
            STATE / "logs" / f"{self.name}.log",
            self.stop_signal,
        )

    @property
    @abstractmethod
    def ports(self) -> dict[str, int]:
        """What each port is for."""

    @property
    @abstractmethod
    def endpoints(self) -> dict[str, str]:
        """Where users and tests reach it."""

    @abstractmethod
    def launch(self) -> None:
        """Prepare state on first use, then start the process in the background."""

    @abstractmethod
    def healthy(self) -> bool:
        """One quick probe; never raises."""

    def after_healthy(self) -> None:  # noqa: B027 (optional hook: most components need nothing)
        """Provision what the system needs of this component (idempotent)."""


class Postgres(Component):
    # SIGINT is PostgreSQL's "fast" shutdown: it does not wait for clients to disconnect.
    stop_signal = signal.SIGINT

    name = "postgres"
    # Five processes' pools, their relays, shopctl and the tests' own connections (compose: the same).
    MAX_CONNECTIONS = 300

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.admin = settings.admin_database_url()
        self.home = STATE / "postgres"

    @property
    def data(self) -> Path:
        return self.home.resolve() / "data"

    @property
    def socket_dir(self) -> Path:
        return self.home.resolve() / "run"

    @property
    def ports(self) -> dict[str, int]:
        return {"sql": self.admin.port or 5432}

    @property
    def endpoints(self) -> dict[str, str]:
        return {
            "sql": f"postgresql://localhost:{self.ports['sql']}/shop (a role per service, see .env.example)"
        }

    def _as_server_user(self) -> list[str]:
        # PostgreSQL refuses to run as root: under root, run it as Debian's `postgres` system user.
        if os.geteuid() != 0:
            return []
        try:
            pwd.getpwnam("postgres")
        except KeyError as exc:
            raise install.MissingPrerequisite(
                "running as root needs the `postgres` system user: apt-get install postgresql"
            ) from exc
        return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"]

    def _own(self, path: Path) -> None:
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(path, pw.pw_uid, pw.pw_gid)

    def _find_a_home(self) -> None:
        """Under root the server runs as `postgres`, which cannot enter a checkout in a private folder
        (root's home is 0700): then its files live under /var/lib/shop-stack, linked from .stack."""
        if self.home.exists() or os.geteuid() != 0:
            return
        STATE.mkdir(parents=True, exist_ok=True)
        if self._server_user_reaches(STATE):
            return
        key = hashlib.sha256(str(STATE.resolve()).encode()).hexdigest()[:12]
        outside = OUTSIDE_STATE / key / "postgres"
        outside.mkdir(parents=True, exist_ok=True)
        self.home.symlink_to(outside, target_is_directory=True)

    def _server_user_reaches(self, path: Path) -> bool:
        test = subprocess.run([*self._as_server_user(), "test", "-x", str(path)], capture_output=True)
        return test.returncode == 0

    def launch(self) -> None:
        bin_dir = install.postgres_bin_dir()
        self._find_a_home()
        for d in (self.data.parent, self.socket_dir):
            d.mkdir(parents=True, exist_ok=True)
            self._own(d)
        if not (self.data / "PG_VERSION").exists():
            self._initdb(bin_dir)
        self.process.start(
            [
                *self._as_server_user(),
                str(bin_dir / "postgres"),
                "-D",
                str(self.data),
                "-c",
                f"port={self.ports['sql']}",
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"unix_socket_directories={self.socket_dir}",
                "-c",
                f"max_connections={self.MAX_CONNECTIONS}",
            ],
            cwd=self.data.parent,  # the server and its tools go back to where they started: one it may enter
        )

    def _initdb(self, bin_dir: Path) -> None:
        with tempfile.NamedTemporaryFile("w", dir=self.data.parent, delete=False) as pw:
            pw.write(self.admin.password or "")
        self._own(Path(pw.name))
        try:
            result = subprocess.run(
                [
                    *self._as_server_user(),
                    str(bin_dir / "initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    self.admin.username or "postgres",
                    f"--pwfile={pw.name}",
                    "--auth=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                ],
                capture_output=True,
                text=True,
                cwd=self.data.parent,
            )
        finally:
            os.unlink(pw.name)
        self.process.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.process.log_file.open("a") as log:
            log.write(result.stdout + result.stderr)
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{result.stderr.strip()}")

    def healthy(self) -> bool:
        try:
            with psycopg.connect(libpq_dsn(self.admin), connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    def after_healthy(self) -> None:
        from shared.provision import ensure_owned_database, ensure_roles_and_schemas

        ensure_roles_and_schemas(self.settings)
        ensure_owned_database(
            self.admin, "schema_registry", "schema_registry", StackSettings().schema_registry_db_password
        )


# How many brokers a stack has is fixed when its storage is first formatted (`make stack-up BROKERS=3`):
# node 1 keeps the one-broker stack's ports and paths, node n listens on 9092 + 2(n-1) for clients and
# the port after it for the controllers.
BROKERS_FILE = STATE / "kafka" / "brokers"


class BrokerCountError(Exception):
    """BROKERS asks for what the local stack cannot be, or for other than what it was made with."""


def kafka_brokers() -> int:
    """This stack's number of brokers: as formatted, else BROKERS (1 or 3), else 1."""
    asked = os.environ.get("BROKERS", "").strip()
    if asked not in ("", "1", "3"):
        raise BrokerCountError(f"BROKERS={asked}: the local stack runs 1 or 3 brokers")
    formatted_alone = (STATE / "kafka" / "data" / "meta.properties").exists()  # from before BROKERS
    if BROKERS_FILE.exists() or formatted_alone:
        formatted = int(BROKERS_FILE.read_text()) if BROKERS_FILE.exists() else 1
        if asked and int(asked) != formatted:
            raise BrokerCountError(
                f"this stack's Kafka was made with {formatted} broker(s), BROKERS={asked} asks otherwise: "
                "`make stack-clean` first (it deletes the stack's data)"
            )
        return formatted
    return int(asked or 1)


class Kafka(Component):
    start_timeout = 90

    def __init__(self, settings: Settings, node: int = 1, brokers: int = 1) -> None:
        self.node, self.brokers = node, brokers
        self.name = "kafka" if node == 1 else f"kafka-{node}"
        super().__init__(settings)

    @property
    def ports(self) -> dict[str, int]:
        first = _port_of(self.settings.kafka_bootstrap_servers, 9092)
        client = first + 2 * (self.node - 1)
        return {"broker": client, "controller": 9093 + 2 * (self.node - 1)}

    @property
    def endpoints(self) -> dict[str, str]:
        if self.node == 1:
            return {"bootstrap": self.settings.kafka_bootstrap_servers}
        return {"broker": f"localhost:{self.ports['broker']}"}

    @property
    def _data(self) -> Path:
        return STATE / self.name / "data"

    def launch(self) -> None:
        config = self._config("server.properties")
        secrets = self._secrets()  # before anything is formatted
        self._issue_tls(secrets)
        # A migration cut short (stack-up killed) may have left the unsecured broker running.
        self._unsecured.stop()
        if not (self._data / "meta.properties").exists():
            # The admin user is written into the new storage; everyone else is provisioned.
            scram = f"{self.settings.kafka_sasl_mechanism}=[name={ADMIN},password={self._admin_password}]"
            self._run_tool("kafka.tools.StorageTool", "format", "-t", self._cluster_id(), "-c", str(config),
                           "--add-scram", scram)  # fmt: skip
            self._admin_marker.touch()
            BROKERS_FILE.write_text(f"{self.brokers}\n")
        elif not self._admin_marker.exists():
            self._add_admin_to_unsecured_storage()
        self.process.start(self._broker_command(config), env=secrets)

    def _cluster_id(self) -> str:
        """One id for every node of the cluster, made by the first one formatted."""
        path = STATE / "kafka" / "cluster.id"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(_kafka_cluster_id())
        return path.read_text().strip()

    @property
    def _admin_password(self) -> str:
        return self.settings.kafka_client(ADMIN)["sasl.password"]

    @property
    def _admin_marker(self) -> Path:
        # Storage formatted before the broker authenticated has no admin user (see below). In the
        # data directory, so that it goes and comes with the storage (Kafka reads only directories
        # and files of its own there).
        return self._data / ".shop-admin-user"

    @property
    def _unsecured(self) -> ManagedProcess:
        """The broker as it ran before logins, run once by a migration: a process of its own."""
        return ManagedProcess(
            "kafka-unsecured", STATE / "run" / "kafka-unsecured.pid", self.process.log_file, self.stop_signal
        )

    def _secrets(self) -> dict[str, str]:
        # Their characters were checked with the settings (Settings._passwords_fit_where_they_go).
        # Read by the broker's EnvVarConfigProvider (server.properties).
        secrets = {"KAFKA_ADMIN_PASSWORD": self._admin_password}
        for name in ("KAFKA_CONTROLLER_PASSWORD", "KAFKA_KEYSTORE_PASSWORD"):
            value = getattr(self.settings, name.lower())
            if not value:
                raise RuntimeError(f"{name} not set (see .env.example)")
            secrets[name] = value
        return secrets

    def _issue_tls(self, secrets: dict[str, str]) -> None:
        """The stack's CA and the broker's certificate, made once (deploy/tls/issue.sh, which docker
        compose runs too) with the keytool beside our java."""
        keystore = TLS / "broker.p12"
        if keystore.exists() and not os.access(keystore, os.R_OK):
            raise RuntimeError(
                f"{keystore} is not readable: docker compose's kafka-tls made it for its broker's user."
                f" Remove {TLS} (as root) and start again: both stacks make new material there."
            )
        keytool = str(Path(install.java()).with_name("keytool"))
        result = subprocess.run(
            ["bash", str(REPO / "deploy" / "tls" / "issue.sh"), str(TLS)],
            env={
                **os.environ,
                "KEYTOOL": keytool,
                "KAFKA_KEYSTORE_PASSWORD": secrets["KAFKA_KEYSTORE_PASSWORD"],
            },
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"issuing the broker's certificate failed:\n{result.stdout}{result.stderr}".strip()
            )
        if result.stdout.strip():
            print(result.stdout.strip().splitlines()[-1], flush=True)

    def _config(self, template: str) -> Path:
        config = STATE / self.name / template
        config.parent.mkdir(parents=True, exist_ok=True)
        # safe_substitute: ${env:...} is the broker's own placeholder, left for it.
        text = Template((DEPLOY / "kafka" / template).read_text()).safe_substitute(STATE=STATE, TLS=TLS)
        config.write_text(_with_properties(text, self._cluster_properties()) if self.brokers > 1 else text)
        return config

    def _cluster_properties(self) -> dict[str, str]:
        """What a node of a three-broker cluster changes in the one-broker configuration: its id, ports
        and storage, the controller quorum, and three replicas of every internal topic, two in sync."""
        voters = ",".join(f"{n}@127.0.0.1:{9093 + 2 * (n - 1)}" for n in range(1, self.brokers + 1))
        client, controller = self.ports["broker"], self.ports["controller"]
        return {
            "node.id": str(self.node),
            "controller.quorum.voters": voters,
            "listeners": f"CLIENT://127.0.0.1:{client},CONTROLLER://127.0.0.1:{controller}",
            "advertised.listeners": f"CLIENT://localhost:{client}",
            "log.dirs": str(self._data),
            "offsets.topic.replication.factor": "3",
            "transaction.state.log.replication.factor": "3",
            "transaction.state.log.min.isr": "2",
            "share.coordinator.state.topic.replication.factor": "3",
            "share.coordinator.state.topic.min.isr": "2",
            "min.insync.replicas": "2",
        }

    def _java(self) -> list[str]:
        return [
            install.java(),
            "-cp",
            f"{install.kafka_libs()}/*",
            f"-Dlog4j2.configurationFile={DEPLOY / 'kafka' / 'log4j2.properties'}",
        ]

    def _broker_command(self, config: Path) -> list[str]:
        java = self._java()
        return [
            java[0], "-Xms512m", "-Xmx512m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true", *java[1:], "kafka.Kafka", str(config),
        ]  # fmt: skip

    def _run_tool(self, *args: str) -> None:
        """A Kafka tool whose arguments hold a secret: they go through a java @-file, readable by us
        alone and removed at once, so that the password is never on a command line (`ps`)."""
        java = self._java()
        with tempfile.NamedTemporaryFile("w", dir=STATE / "kafka", suffix=".args") as argfile:
            argfile.write("\n".join(f'"{a}"' for a in [*java[1:], *args]) + "\n")
            argfile.flush()
            result = subprocess.run([java[0], f"@{argfile.name}"], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"{args[0]} failed:\n{result.stdout}{result.stderr}".strip())

    def _add_admin_to_unsecured_storage(self) -> None:
        """Storage formatted before the broker required logins (issue 11) has no admin user, and
        formatting again would lose the events in it: start the broker once as it was, unsecured, add
        the admin through it, and stop it."""
        from shared.provision import set_scram_passwords

        print("kafka: adding the admin user to storage from before authentication", flush=True)
        unsecured = self._unsecured
        unsecured.start(self._broker_command(self._config("unsecured.properties")))
        try:
            deadline = time.monotonic() + self.start_timeout
            admin = AdminClient({"bootstrap.servers": self.settings.kafka_bootstrap_servers, "log_level": 0})
            while True:
                try:
                    admin.list_topics(timeout=2)
                    break
                except KafkaException as exc:
                    if time.monotonic() > deadline or unsecured.exited():
                        raise RuntimeError(
                            f"kafka did not start unsecured: see {self.process.log_file}"
                        ) from exc
                    time.sleep(1)
            set_scram_passwords(admin, self.settings, {ADMIN: self._admin_password})
        finally:
            unsecured.stop()
        self._admin_marker.touch()

    def healthy(self) -> bool:
        # A plain connect first: librdkafka logs every refused connection.
        if not port_open(self.ports["broker"]):
            return False
        try:
            # This node itself, not whichever the bootstrap list reaches first.
            own = {"bootstrap.servers": f"localhost:{self.ports['broker']}", "log_level": 0}
            AdminClient({**self.settings.kafka_client(ADMIN), **own}).list_topics(timeout=2)
            return True
        except KafkaException:
            return False

    def after_healthy(self) -> None:
        if self.node != self.brokers:
            return  # provisioning waits for the last node: topics are replicated to every broker
        from shared.provision import ensure_access, ensure_topics

        admin = self.settings.kafka_client(ADMIN)
        ensure_topics(admin)
        ensure_access(self.settings)


def _with_properties(text: str, values: dict[str, str]) -> str:
    """A .properties text with these keys set: in place where the text has them, else appended."""
    lines, seen = [], set()
    for line in text.splitlines():
        key = line.split("=", 1)[0].strip()
        if not line.lstrip().startswith("#") and key in values:
            line, _ = f"{key}={values[key]}", seen.add(key)
        lines.append(line)
    lines += [f"{k}={v}" for k, v in values.items() if k not in seen]
    return "\n".join(lines) + "\n"


def _kafka_cluster_id() -> str:
    # KRaft cluster ids are 16 random bytes in URL-safe base64, without padding; one that begins with
    # "-" would read as an option to kafka-storage, so it is drawn again (as Kafka's Uuid.randomUuid does).
    import base64

    while (cluster_id := base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")).startswith("-"):
        pass
    return cluster_id


class SchemaRegistry(Component):
    name = "schema-registry"
    start_timeout = 120

    @property
    def ports(self) -> dict[str, int]:
        return {"http": _port_of(self.settings.schema_registry_url, 8081)}

    @property
    def endpoints(self) -> dict[str, str]:
        return {"confluent api": self.settings.schema_registry_url}

    def launch(self) -> None:
        app = install.registry_app()
        admin = self.settings.admin_database_url()
        password = StackSettings().schema_registry_db_password
        props = {
            "quarkus.http.host": "127.0.0.1",
            "quarkus.http.port": str(self.ports["http"]),
            # Schemas outlive restarts, like Confluent's registry (which keeps them in Kafka).
            "apicurio.storage.kind": "sql",
            "apicurio.storage.sql.kind": "postgresql",
            "apicurio.datasource.url": f"jdbc:postgresql://{admin.host}:{admin.port}/schema_registry",
            "apicurio.datasource.username": "schema_registry",
            "apicurio.datasource.jdbc.initial-size": "2",
            "apicurio.datasource.jdbc.min-size": "2",
            "apicurio.datasource.jdbc.max-size": "20",
            # Confluent's API lets clients delete subjects and versions; so must this one.
            "apicurio.rest.deletion.group.enabled": "true",
            "apicurio.rest.deletion.artifact.enabled": "true",
            "apicurio.rest.deletion.artifact-version.enabled": "true",
            # Its health and metrics port listens on every interface unless told.
            "quarkus.management.host": "127.0.0.1",
            # Writes need a login with a writing role (shared.access.REGISTRY_ROLES); reads need none.
            # Without the first line Apicurio fails open: it allows everything, and says so only in
            # its log, at the first request (healthy() checks that an anonymous write is refused).
            "quarkus.http.auth.basic": "true",
            "apicurio.auth.role-based-authorization": "true",
            "apicurio.auth.anonymous-read-access.enabled": "true",
            # sr-developer alone may write any subject: with this, only a subject's owner may change
            # or delete it (the storefront its OrderPlaced, which provisioning hands it); sr-admin is
            # exempt. A subject nobody owns yet stays creatable by any writer.
            "apicurio.auth.owner-only-authorization": "true",
            "quarkus.security.users.embedded.plain-text": "false",
            "quarkus.security.users.embedded.algorithm": "digest-md5",
        }
        self.process.start(
            [
                install.java(),
                "-Xms256m",
                "-Xmx384m",
                "-XX:+UseSerialGC",
                *(f"-D{k}={v}" for k, v in props.items()),
                "-jar",
                str(app / "quarkus-run.jar"),
            ],
            # In its environment, not on its command line (which `ps` shows to every user, and the
            # log's start line records); Quarkus maps the variable to apicurio.datasource.password.
            env={"APICURIO_DATASOURCE_PASSWORD": password, **self._users()},
            cwd=app,
        )

    def _users(self) -> dict[str, str]:
        """The registry's logins, as Quarkus's embedded users in the environment: each password as
        its digest (md5 of `user:Quarkus:password`, the realm Quarkus uses), never in clear."""
        import hashlib

        env = {}
        for user, role in REGISTRY_ROLES.items():
            password = self.settings.registry_login(user).partition(":")[2]
            digest = hashlib.md5(f"{user}:Quarkus:{password}".encode()).hexdigest()
            env[f"QUARKUS_SECURITY_USERS_EMBEDDED_USERS_{user.upper()}"] = digest
            env[f"QUARKUS_SECURITY_USERS_EMBEDDED_ROLES_{user.upper()}"] = role
        return env

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.settings.schema_registry_url}/subjects", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def after_healthy(self) -> None:
        from shared.provision import ensure_event_schemas

        # Apicurio fails open when its authentication is misconfigured: refuse to go on if it does.
        anonymous = httpx.post(
            f"{self.settings.schema_registry_url}/subjects/provisioning-probe/versions",
            json={"schema": '"string"'},
            headers={"Content-Type": "application/vnd.schemaregistry.v1+json"},
            timeout=10,
        )
        if anonymous.status_code != 401:
            raise RuntimeError(
                f"the schema registry took an anonymous write (HTTP {anonymous.status_code}): its "
                f"authentication is off; see {self.process.log_file}"
            )

        ensure_event_schemas(self.settings)


class Jaeger(Component):
    name = "jaeger"

    @property
    def ports(self) -> dict[str, int]:
        return {
            "otlp grpc": _port_of(self.settings.otel_exporter_otlp_endpoint, 4317),
            "otlp http": 4318,
            "query/ui": _port_of(self.settings.jaeger_query_url, 16686),
            "health": 13133,
        }

    @property
    def endpoints(self) -> dict[str, str]:
        return {
            "otlp": f"{self.settings.otel_exporter_otlp_endpoint} (gRPC), http://localhost:4318 (HTTP)",
            "query api": f"{self.settings.jaeger_query_url}/api/traces",
        }

    def launch(self) -> None:
        binary = install.jaeger_binary()
        self.process.start([str(binary), "--config", str(DEPLOY / "jaeger" / "config.yaml")])

    def healthy(self) -> bool:
        try:
            return httpx.get("http://127.0.0.1:13133/status", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False


class Prometheus(Component):
    """Scrapes every process's /metrics: compose's configuration (deploy/prometheus/prometheus.yml) with
    each target on this host's loopback. Built from the module, it has no web UI assets: its API
    (/api/v1/query, /api/v1/targets) is complete, its UI pages are not."""

    name = "prometheus"

    @property
    def ports(self) -> dict[str, int]:
        return {"http": _port_of(self.settings.prometheus_url, 9090)}

    @property
    def endpoints(self) -> dict[str, str]:
        return {
            "query api": f"{self.settings.prometheus_url}/api/v1/query",
            "targets": f"{self.settings.prometheus_url}/api/v1/targets",
        }

    @property
    def _home(self) -> Path:
        return STATE / "prometheus"

    def scrape_config(self) -> str:
        """Compose's configuration, each process's target ("order:9101") made "127.0.0.1:9101"."""
        text = (REPO / "deploy" / "prometheus" / "prometheus.yml").read_text()
        for process in PROCESSES:
            target = f'"{process}:{HEALTH_PORTS[process]}"'
            if target not in text:
                raise RuntimeError(f"deploy/prometheus/prometheus.yml has no target {target}")
            text = text.replace(target, f'"127.0.0.1:{HEALTH_PORTS[process]}"')
        return text

    def launch(self) -> None:
        binary = install.prometheus_binary()
        data = self._home / "data"
        data.mkdir(parents=True, exist_ok=True)
        config = self._home / "prometheus.yml"
        config.write_text(self.scrape_config())
        self.process.start(
            [
                str(binary),
                f"--config.file={config}",
                f"--storage.tsdb.path={data}",
                "--storage.tsdb.retention.time=7d",
                f"--web.listen-address=127.0.0.1:{self.ports['http']}",
            ],
            cwd=self._home,
        )

    def healthy(self) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{self.ports['http']}/-/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False


class ServiceProcess(Component):
    """One of the system's own services, run from this checkout with the same settings."""

    start_timeout = 90

    def __init__(self, settings: Settings, service: ServiceName) -> None:
        self.name = service
        self.port = settings.health_port or HEALTH_PORTS[service]
        super().__init__(settings)

    @property
    def ports(self) -> dict[str, int]:
        return {"health": self.port}

    @property
    def endpoints(self) -> dict[str, str]:
        return {
            "health": f"http://127.0.0.1:{self.port}/health",
            "metrics": f"http://127.0.0.1:{self.port}/metrics",
        }

    def launch(self) -> None:
        env = {"HEALTH_PORT": str(self.port), "PYTHONPATH": str(REPO)}
        self.process.start([sys.executable, "-m", f"services.{self.name}"], env=env, cwd=REPO)

    def healthy(self) -> bool:
        try:
            return httpx.get(self.endpoints["health"], timeout=2).status_code == 200
        except httpx.HTTPError:
            return False


def service_processes(settings: Settings) -> list[Component]:
    return [ServiceProcess(settings, s) for s in PROCESSES]


def all_components(settings: Settings) -> list[Component]:
    """In start order: the registry keeps its schemas in PostgreSQL."""
    brokers = kafka_brokers()
    kafka = [Kafka(settings, node, brokers) for node in range(1, brokers + 1)]
    return [Postgres(settings), *kafka, SchemaRegistry(settings), Jaeger(settings), Prometheus(settings)]
