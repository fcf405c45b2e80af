"""What the no-Docker stack's commands say and return on bad input, run for real as subprocesses."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
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
