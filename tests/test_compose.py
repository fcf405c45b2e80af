"""docker-compose.yml cannot run here: check its structure, and that it agrees with the local stack
(same ports, same versions, same Kafka settings) and with the settings model (same variable names)."""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from dotenv import dotenv_values

from shared.settings import HEALTH_PORTS, PROCESSES, Settings

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "deploy" / "local"))

from localstack import install  # noqa: E402
from localstack.components import Postgres, all_components  # noqa: E402

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
APP_JOBS = {"kafka-init", "schemas-init", "postgres-init", "seed"}  # the app image's one-shot jobs
ONE_SHOT = APP_JOBS | {"kafka-tls"}  # kafka-tls runs in the broker's image, for its keytool
INFRASTRUCTURE = {"kafka", "schema-registry", "postgres", "jaeger"}
SETTING_NAMES = {name.upper() for name in Settings.model_fields}


def host_ports(service: str) -> set[int]:
    return {int(str(p).split(":")[-2]) for p in SERVICES[service].get("ports", [])}


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_host_port_listens_on_loopback_only(name):
    for port in SERVICES[name].get("ports", []):
        assert str(port).startswith("127.0.0.1:"), f"{name}: {port} listens on every interface"


def test_kafka_ui_cannot_change_anything():
    assert SERVICES["kafka-ui"]["environment"]["KAFKA_CLUSTERS_0_READONLY"] == "true"


def test_the_infrastructure_and_its_init_jobs_are_there():
    assert set(SERVICES) >= INFRASTRUCTURE | ONE_SHOT


@pytest.mark.parametrize("name", sorted(set(SERVICES) - ONE_SHOT))
def test_every_long_running_service_has_a_healthcheck(name):
    check = SERVICES[name].get("healthcheck", {})
    assert check.get("test"), f"{name} has no healthcheck"
    assert check.get("retries", 0) > 0 and "interval" in check


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_dependency_waits_for_health_or_completion(name):
    for dependency, how in SERVICES[name].get("depends_on", {}).items():
        assert dependency in SERVICES
        wanted = "service_completed_successfully" if dependency in ONE_SHOT else "service_healthy"
        assert how == {"condition": wanted}, f"{name} -> {dependency}"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_image_is_pinned(name):
    image = SERVICES[name]["image"]
    assert re.fullmatch(r"[\w./-]+:[\w.-]+", image), image
    assert not image.endswith(":latest")


def test_one_shot_jobs_run_the_shared_provisioning_and_the_seed():
    assert SERVICES["kafka-init"]["command"] == ["python", "-m", "shared.provision", "kafka"]
    assert SERVICES["schemas-init"]["command"] == ["python", "-m", "shared.provision", "schemas"]
    assert SERVICES["postgres-init"]["command"] == ["python", "-m", "shared.provision", "database"]
    assert SERVICES["seed"]["command"] == ["python", "-m", "services.seed"]
    for job in APP_JOBS:
        assert SERVICES[job]["build"]["dockerfile"] == "deploy/Dockerfile"
        assert (REPO / SERVICES[job]["build"]["dockerfile"]).is_file()


@pytest.mark.parametrize("service", PROCESSES)
def test_each_service_runs_from_the_one_image_with_its_health_port(service):
    spec = SERVICES[service]
    assert spec["build"]["dockerfile"] == "deploy/Dockerfile" and spec["image"] == SERVICES["seed"]["image"]
    assert spec["command"] == ["python", "-m", f"services.{service}"]
    port = HEALTH_PORTS[service]
    assert spec["environment"]["HEALTH_PORT"] == port and spec["environment"]["HEALTH_HOST"] == "0.0.0.0"
    assert host_ports(service) == {port}
    assert set(spec["environment"]) <= SETTING_NAMES
    assert spec["depends_on"]["kafka-init"] == {"condition": "service_completed_successfully"}
    assert spec["depends_on"]["postgres-init"] == {"condition": "service_completed_successfully"}


def test_host_ports_are_the_local_stack_ports():
    local = {c.name: set(c.ports.values()) for c in all_components(Settings())}
    # The controller listener stays inside each stack.
    assert host_ports("kafka") == local["kafka"] - {9093}
    # The registry itself has none: the gateway serves the host (test_one_registry_url_for_the_host).
    assert host_ports("schema-registry") == set()
    assert host_ports("schema-registry-gateway") == local["schema-registry"]
    assert host_ports("postgres") == local["postgres"]
    assert host_ports("jaeger") == local["jaeger"]


def test_app_containers_are_configured_through_the_settings_names():
    for job in APP_JOBS:
        environment = SERVICES[job]["environment"]
        assert set(environment) <= SETTING_NAMES, set(environment) - SETTING_NAMES
        assert [e["path"] for e in SERVICES[job]["env_file"]] == [".env.example", ".env"]


def test_env_example_defines_every_setting_without_a_default_and_nothing_unknown():
    values = dotenv_values(REPO / ".env.example")
    assert {f"{s.upper()}_DATABASE_URL" for s in PROCESSES} <= set(values)
    # Besides settings: the official postgres image's variables, and passwords the URLs interpolate.
    others = {"POSTGRES_USER", "POSTGRES_PASSWORD", "SCHEMA_REGISTRY_DB_PASSWORD"}
    passwords = {k for k in values if k.endswith("_DB_PASSWORD")}
    assert set(values) - SETTING_NAMES - others - passwords == set()
    assert all("${" not in (v or "") for v in values.values()), "every ${VAR} must resolve"


def properties(path: str) -> dict[str, str]:
    pairs = {}
    for line in (REPO / path).read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            pairs[key] = value
    return pairs


def test_kafka_settings_match_the_local_broker():
    local = properties("deploy/local/kafka/server.properties")
    compose = properties("deploy/compose/kafka/server.properties")
    # Listeners and paths differ by design (compose has a listener for the host besides the containers'
    # and its JAAS line); everything else must agree.
    differ = {"listeners", "advertised.listeners", "listener.security.protocol.map", "log.dirs",
              "ssl.keystore.location", "ssl.truststore.location"}  # fmt: skip
    only_compose = {"listener.name.host.scram-sha-512.sasl.jaas.config"}
    assert set(local) - differ == set(compose) - differ - only_compose
    for key in set(local) - differ:
        assert compose[key] == local[key], key
    assert local["authorizer.class.name"].endswith("StandardAuthorizer")
    assert local["allow.everyone.if.no.acl.found"] == "false" and local["super.users"] == "User:admin"
    for listeners in (local, compose):
        protocols = dict(p.split(":") for p in listeners["listener.security.protocol.map"].split(","))
        # Every client listener has TLS and a login; the controller, on loopback, a login.
        assert protocols.pop("CONTROLLER") == "SASL_PLAINTEXT"
        assert set(protocols.values()) == {"SASL_SSL"}, "no client listener without TLS and a login"
    assert "CONTROLLER://127.0.0.1:9093" in compose["listeners"].split(","), "the controller stays inside"


def test_kafka_starts_from_the_mounted_config_with_no_secret_in_compose():
    kafka = SERVICES["kafka"]
    assert kafka["entrypoint"] == ["/bin/bash", "/etc/kafka/shop/start.sh"]
    assert "./deploy/compose/kafka:/etc/kafka/shop:ro" in kafka["volumes"]
    assert "--command-config" in kafka["healthcheck"]["test"][1]
    text = (REPO / "docker-compose.yml").read_text()
    for name, value in dotenv_values(REPO / ".env.example").items():
        if name.endswith("PASSWORD") and value:
            assert value not in text, f"{name}'s value is written in docker-compose.yml"


def test_every_kafka_client_in_compose_trusts_the_stack_ca():
    tls = SERVICES["kafka-tls"]
    assert "./.stack/tls:/etc/kafka/tls" in tls["volumes"]
    assert "/opt/shop/tls/issue.sh" in tls["entrypoint"][-1]
    assert SERVICES["kafka"]["depends_on"]["kafka-tls"]["condition"] == "service_completed_successfully"
    assert "./.stack/tls:/etc/kafka/tls:ro" in SERVICES["kafka"]["volumes"]
    for name, service in SERVICES.items():
        env = service.get("environment", {})
        if "KAFKA_BOOTSTRAP_SERVERS" in env:  # the app image: the Python settings
            assert env["KAFKA_SSL_CA_LOCATION"] == "/etc/shop/tls/ca.crt", name
            assert "./.stack/tls:/etc/shop/tls:ro" in service["volumes"], name
    registry = SERVICES["schema-registry"]["environment"]
    assert registry["SCHEMA_REGISTRY_KAFKASTORE_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert registry["SCHEMA_REGISTRY_KAFKASTORE_SSL_TRUSTSTORE_LOCATION"] == "/etc/shop/tls/ca.crt"
    ui = SERVICES["kafka-ui"]["environment"]
    assert ui["KAFKA_CLUSTERS_0_PROPERTIES_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert ui["KAFKA_CLUSTERS_0_PROPERTIES_SSL_TRUSTSTORE_LOCATION"] == "/etc/shop/tls/ca.crt"
    start = (REPO / "deploy/compose/kafka/start.sh").read_text()
    assert "security.protocol=SASL_SSL" in start and "ssl.truststore.location=/etc/kafka/tls/ca.crt" in start


def test_versions_agree_with_the_local_stack():
    pom = ET.parse(REPO / "deploy/local/kafka/pom.xml").getroot()
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    kafka_version = pom.find("m:properties/m:kafka.version", ns).text
    assert SERVICES["kafka"]["image"] == f"apache/kafka:{kafka_version}"

    # Jaeger v2.N is released together with module v1.(63+N).
    go_mod = (REPO / "deploy/local/jaeger/go.mod").read_text()
    minor = int(re.search(r"github.com/jaegertracing/jaeger v1\.(\d+)\.0", go_mod).group(1))
    assert SERVICES["jaeger"]["image"] == f"jaegertracing/jaeger:2.{minor - 63}.0"

    # Confluent Platform 8.1 pairs with Kafka 4.1.
    cp_minor = re.search(r"cp-schema-registry:8\.(\d+)\.", SERVICES["schema-registry"]["image"]).group(1)
    assert kafka_version.startswith(f"4.{cp_minor}.")

    pg_major = install.postgres_bin_dir().parts[-2]
    assert SERVICES["postgres"]["image"].startswith(f"postgres:{pg_major}.")


def test_jaeger_runs_the_local_stacks_config():
    assert "./deploy/local/jaeger/config.yaml:/etc/jaeger/config.yaml:ro" in SERVICES["jaeger"]["volumes"]
    assert SERVICES["jaeger"]["command"] == ["--config", "/etc/jaeger/config.yaml"]


def test_the_registry_requires_logins_made_from_the_environment():
    registry = SERVICES["schema-registry"]
    assert registry["entrypoint"] == ["/bin/bash", "/etc/schema-registry/shop/start.sh"]
    assert registry["environment"]["SCHEMA_REGISTRY_AUTHENTICATION_METHOD"] == "BASIC"
    assert registry["healthcheck"]["test"] == ["CMD", "bash", "/etc/schema-registry/shop/healthcheck.sh"]
    script = (REPO / "deploy/compose/schema-registry/start.sh").read_text()
    assert "| base64 -w0 > /tmp/healthcheck.auth" in script
    for user in ("provisioning", "storefront", "reader"):
        assert f"{user}: $SCHEMA_REGISTRY_{user.upper()}_PASSWORD," in script
    ui = SERVICES["kafka-ui"]["environment"]
    assert ui["KAFKA_CLUSTERS_0_SCHEMAREGISTRYAUTH_USERNAME"] == "reader"


LONG_RUNNING = sorted(set(SERVICES) - ONE_SHOT)


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_everything_long_running_comes_back_after_a_reboot(name):
    assert SERVICES[name].get("restart") == "unless-stopped", name


def test_up_runs_the_code_of_the_checkout():
    for name, service in SERVICES.items():
        if "build" in service:
            assert service["pull_policy"] == "build", name


def test_postgres_allows_the_connections_the_local_stack_allows():
    command = SERVICES["postgres"]["command"]
    assert command[0] == "postgres"
    assert f"max_connections={Postgres.MAX_CONNECTIONS}" in command


def test_shopctl_in_a_container_probes_each_process_in_its_own_container():
    for name, service in SERVICES.items():
        env = service.get("environment", {})
        if "KAFKA_BOOTSTRAP_SERVERS" in env:  # the app image
            assert env["HEALTH_PROBE_HOST"] == "{process}", name
    assert set(PROCESSES) <= set(SERVICES), "each process is the container of its name"


def test_kafkas_healthcheck_is_a_small_jvm_and_seldom_once_started():
    check = SERVICES["kafka"]["healthcheck"]
    assert check["test"][1].startswith("KAFKA_HEAP_OPTS=-Xmx64m ")
    assert check["interval"] == "30s" and check["start_interval"] == "5s"


def test_one_registry_url_for_the_host():
    """.env.example's registry URL (Apicurio's path) reaches Confluent's registry through the gateway."""
    url = dotenv_values(REPO / ".env.example")["SCHEMA_REGISTRY_URL"]
    path = "/" + url.split("/", 3)[3].rstrip("/") + "/"
    gateway = SERVICES["schema-registry-gateway"]
    conf_mount = "./deploy/compose/schema-registry/gateway.conf:/etc/nginx/conf.d/default.conf:ro"
    assert conf_mount in gateway["volumes"]
    assert gateway["depends_on"] == {"schema-registry": {"condition": "service_healthy"}}
    conf = (REPO / "deploy/compose/schema-registry/gateway.conf").read_text()
    mapping = re.search(r"location (\S+) \{\s*proxy_pass (\S+);", conf)
    assert mapping and mapping.groups() == (path, "http://schema-registry:8081/")
    # The app containers go to the registry itself, at its root.
    assert SERVICES["order"]["environment"]["SCHEMA_REGISTRY_URL"] == "http://schema-registry:8081"
