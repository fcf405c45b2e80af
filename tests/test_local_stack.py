"""What the no-Docker stack's commands say and return on bad input, run for real as subprocesses."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def localstack(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "localstack", *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO / "deploy" / "local"), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_port_already_taken_stops_stack_up_naming_port_and_component(tmp_path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        result = localstack(
            "up",
            env={
                "SHOP_STACK_STATE": str(tmp_path / "state"),
                "DATABASE_ADMIN_URL": f"postgresql+psycopg://postgres:pw@localhost:{port}/postgres",
            },
        )
    assert result.returncode == 1
    assert f"port {port} (postgres sql) is already in use" in result.stdout
    assert not (tmp_path / "state" / "run").exists(), "nothing may be started"


def test_a_missing_build_tool_is_named_with_what_to_install(tmp_path):
    result = localstack(
        "install",
        env={"SHOP_STACK_CACHE": str(tmp_path / "cache"), "PATH": "/nonexistent"},
    )
    assert result.returncode == 2
    assert "missing prerequisite: `mvn` not found: apt-get install maven" in result.stdout


def test_a_java_too_old_is_refused(tmp_path):
    java_home = tmp_path / "jdk17"
    (java_home / "bin").mkdir(parents=True)
    java = java_home / "bin" / "java"
    java.write_text("#!/bin/sh\necho 'openjdk version \"17.0.15\" 2025-04-15' >&2\n")
    java.chmod(0o755)
    result = localstack("install", env={"JAVA_HOME": str(java_home)})
    assert result.returncode == 2
    assert f"JAVA_HOME={java_home} is not Java 21+" in result.stdout


def test_status_of_a_stack_that_is_not_running_says_so_and_fails(tmp_path):
    result = localstack("status", env={"SHOP_STACK_STATE": str(tmp_path / "state")})
    assert result.returncode == 1
    for component in ("postgres", "kafka", "schema-registry", "jaeger"):
        assert any(line.startswith(component) and "stopped" in line for line in result.stdout.splitlines())


def test_a_broker_count_the_stack_cannot_run_is_refused(tmp_path):
    result = localstack("up", env={"SHOP_STACK_STATE": str(tmp_path / "state"), "BROKERS": "2"})
    assert result.returncode == 2
    assert "BROKERS=2: the local stack runs 1 or 3 brokers" in result.stdout
    assert not (tmp_path / "state" / "run").exists(), "nothing may be started"


def test_a_one_broker_stack_is_not_silently_made_three(tmp_path):
    storage = tmp_path / "state" / "kafka" / "data"
    storage.mkdir(parents=True)
    (storage / "meta.properties").write_text("node.id=1\n")  # formatted before BROKERS existed
    result = localstack("up", env={"SHOP_STACK_STATE": str(tmp_path / "state"), "BROKERS": "3"})
    assert result.returncode == 2
    assert "made with 1 broker(s), BROKERS=3 asks otherwise: `make stack-clean` first" in result.stdout


def test_kraft_cluster_ids_never_read_as_an_option():
    sys.path.insert(0, str(REPO / "deploy" / "local"))
    from localstack.components import _kafka_cluster_id

    ids = [_kafka_cluster_id() for _ in range(5000)]  # about 1 in 64 random ids begins with "-"
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_postgres_starts_from_a_checkout_its_server_user_cannot_enter(tmp_path):
    private = tmp_path / "home"  # as root's home: mode 0700
    private.mkdir(mode=0o700)
    outside = Path(tempfile.mkdtemp(prefix="shop-outside-"))
    outside.chmod(0o755)
    port = free_port()
    env = {
        "SHOP_STACK_STATE": str(private / "checkout" / ".stack"),
        "SHOP_STACK_OUTSIDE": str(outside),
        "DATABASE_ADMIN_URL": f"postgresql+psycopg://postgres:pw@localhost:{port}/postgres",
    }
    try:
        up = localstack("up", "postgres", env=env)
        assert up.returncode == 0, up.stdout + up.stderr
        assert "postgres         healthy" in up.stdout
        home = private / "checkout" / ".stack" / "postgres"
        if os.geteuid() == 0:  # the server runs as `postgres`: its files moved where it can reach them
            assert home.is_symlink() and home.resolve().is_relative_to(outside)
        assert (home / "data" / "PG_VERSION").exists()
    finally:
        clean = localstack("clean", "postgres", env=env)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert not (private / "checkout" / ".stack").exists()
    assert list(outside.iterdir()) == [], "clean removes what was kept outside too"
    outside.rmdir()
