"""docker-compose.brokers3.yml cannot run here either: check that, laid over docker-compose.yml as
compose lays it, it makes the cluster the no-Docker stack makes with BROKERS=3."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from shared.settings import Settings

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "deploy" / "local"))

from localstack.components import Kafka  # noqa: E402

NODES = ("kafka", "kafka-2", "kafka-3")
CLIENT_ADDRESSES = {f"{node}:19092" for node in NODES}


def merged(base: Any, override: Any) -> Any:
    """Compose's merge of an override file: mappings key by key, ports and volumes appended."""
    if isinstance(base, dict) and isinstance(override, dict):
        both = base.keys() & override.keys()
        return {**base, **override, **{k: merged(base[k], override[k]) for k in both}}
    if isinstance(base, list) and isinstance(override, list):
        return base + [item for item in override if item not in base]
    return override


BASE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
OVERRIDE = yaml.safe_load((REPO / "docker-compose.brokers3.yml").read_text())
SERVICES = merged(BASE, OVERRIDE)["services"]


def test_three_nodes_of_one_cluster_each_with_its_own_storage():
    nodes = [SERVICES[n] for n in NODES]
    assert [n["environment"]["SHOP_KAFKA_NODE_ID"] for n in nodes] == [1, 2, 3]
    voters = {n["environment"]["SHOP_KAFKA_VOTERS"] for n in nodes}
    assert voters == {"1@kafka:9093,2@kafka-2:9093,3@kafka-3:9093"}
    cluster_id = BASE["services"]["kafka"]["environment"]["CLUSTER_ID"]
    assert {n["environment"]["CLUSTER_ID"] for n in nodes} == {cluster_id}
    assert [n.get("hostname") for n in nodes] == list(NODES)
    data = [next(v for v in n["volumes"] if v.endswith(":/var/lib/kafka/data")) for n in nodes]
    assert len(set(data)) == 3
    for node in nodes:
        for key in ("image", "entrypoint", "env_file"):
            assert node[key] == SERVICES["kafka"][key], key
        assert "./deploy/compose/kafka:/etc/kafka/shop:ro" in node["volumes"]
        assert node["depends_on"] == {"kafka-tls": {"condition": "service_completed_successfully"}}
        assert "SHOP_KAFKA_HOST_PORT" in node["healthcheck"]["test"][1]


def test_host_ports_are_the_local_three_broker_stacks():
    for number, name in enumerate(NODES, start=1):
        port = Kafka(Settings(), number, 3).ports["broker"]
        assert SERVICES[name]["ports"] == [f"127.0.0.1:{port}:{port}"]
        assert SERVICES[name]["environment"]["SHOP_KAFKA_HOST_PORT"] == port


def test_every_client_knows_all_three_brokers_and_provisioning_waits_for_them():
    for name, service in SERVICES.items():
        bootstrap = service.get("environment", {}).get("KAFKA_BOOTSTRAP_SERVERS")
        if bootstrap is not None:
            assert set(bootstrap.split(",")) == CLIENT_ADDRESSES, name
    registry = SERVICES["schema-registry"]["environment"]
    assert set(registry["SCHEMA_REGISTRY_KAFKASTORE_BOOTSTRAP_SERVERS"].split(",")) == {
        f"SASL_SSL://{a}" for a in CLIENT_ADDRESSES
    }
    assert registry["SCHEMA_REGISTRY_KAFKASTORE_TOPIC_REPLICATION_FACTOR"] == 3
    ui = SERVICES["kafka-ui"]["environment"]
    assert set(ui["KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS"].split(",")) == CLIENT_ADDRESSES
    for node in NODES:
        assert SERVICES["kafka-init"]["depends_on"][node] == {"condition": "service_healthy"}


def cluster_properties(node: int, host_port: int) -> dict[str, str]:
    scripts = REPO / "deploy" / "compose" / "kafka"
    node_env = {
        "SHOP_KAFKA_NODE_ID": str(node),
        "SHOP_KAFKA_HOST_PORT": str(host_port),
        "SHOP_KAFKA_VOTERS": OVERRIDE["x-cluster"]["SHOP_KAFKA_VOTERS"],
    }
    done = subprocess.run(
        ["bash", str(scripts / "cluster.sh"), str(scripts / "server.properties")],
        env={**os.environ, **node_env},
        capture_output=True,
        text=True,
        check=True,
    )
    keys = [line.partition("=")[0] for line in done.stdout.splitlines() if line and not line.startswith("#")]
    assert len(keys) == len(set(keys)), "each property once"
    return dict(line.split("=", 1) for line in done.stdout.splitlines() if line and not line.startswith("#"))


def test_each_node_changes_what_the_local_stacks_nodes_change():
    node = cluster_properties(2, 9094)
    local = Kafka(Settings(), 2, 3)._cluster_properties()
    networked = {"listeners", "advertised.listeners", "controller.quorum.voters", "log.dirs"}
    for key in set(local) - networked:
        assert node[key] == local[key], key
    assert node["listeners"] == "CLIENT://:19092,HOST://:9094,CONTROLLER://:9093"
    assert node["advertised.listeners"].endswith(",HOST://localhost:9094")
    # The controllers talk across the containers' network: with TLS, unlike on the one broker's loopback.
    assert node["listener.security.protocol.map"] == "CLIENT:SASL_SSL,HOST:SASL_SSL,CONTROLLER:SASL_SSL"
    assert node["log.dirs"] == "/var/lib/kafka/data"


def test_the_brokers_certificate_names_every_node():
    issue = (REPO / "deploy/tls/issue.sh").read_text()
    assert "sans=dns:localhost,dns:kafka,dns:kafka-2,dns:kafka-3,ip:127.0.0.1\n" in issue
    assert '-ext "san=$sans"' in issue
