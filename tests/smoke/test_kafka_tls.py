"""The broker's client listener speaks TLS only, with a certificate from the stack's CA
(deploy/tls/issue.sh): clients verify it, a client that trusts another CA or skips TLS gets nothing,
and TLS without a login is still refused."""

from __future__ import annotations

import socket
import ssl

from shared.settings import Settings
from tests.smoke.probes import refused_login


def _host_port(settings: Settings) -> tuple[str, int]:
    host, _, port = settings.kafka_bootstrap_servers.split(",")[0].rpartition(":")
    return host, int(port)


def test_the_stacks_run_the_client_listener_over_tls(settings):
    assert settings.kafka_security_protocol == "SASL_SSL"
    assert settings.kafka_client("order")["ssl.ca.location"].endswith("ca.crt")


def test_the_broker_presents_a_certificate_of_the_stack_ca_for_its_name(settings):
    context = ssl.create_default_context(cafile=settings.kafka_client("order")["ssl.ca.location"])
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    host, port = _host_port(settings)
    with (
        socket.create_connection((host, port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,  # verifies the chain and the name
    ):
        cert = tls.getpeercert()
        assert tls.version() in {"TLSv1.2", "TLSv1.3"}
    names = {value for _kind, value in cert["subjectAltName"]}
    assert {"localhost", "kafka"} <= names  # the host's name and compose's container name


def test_a_client_that_does_not_trust_the_stack_ca_is_refused(settings):
    config = settings.kafka_client("order")
    del config["ssl.ca.location"]  # librdkafka falls back on the system's CAs, which never signed it
    errors = refused_login(config)
    assert any("certificate verify failed" in e.str() for e in errors), [e.str() for e in errors]


def test_a_client_without_tls_is_refused(settings):
    config = {**settings.kafka_client("order"), "security.protocol": "SASL_PLAINTEXT"}
    del config["ssl.ca.location"]
    assert refused_login(config)


def test_tls_without_a_login_is_refused(settings):
    client = settings.kafka_client("order")
    tls_only = {key: client[key] for key in ("bootstrap.servers", "ssl.ca.location")}
    assert refused_login({**tls_only, "security.protocol": "SSL"})
