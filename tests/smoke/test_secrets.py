"""No password of the stack is on any command line (`ps` shows every process's to every user) or in
any log the no-Docker stack writes."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.e2e.support import REPO


def _secrets() -> dict[str, str]:
    """Every *_PASSWORD the settings files define (the environment's own, where it overrides)."""
    found: dict[str, str] = {}
    for name in (".env.example", ".env"):
        path = REPO / name
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip().endswith("PASSWORD") and not line.lstrip().startswith("#"):
                found[key.strip()] = os.environ.get(key.strip(), value.strip())
    return {k: v for k, v in found.items() if len(v) >= 6}  # a short one would match by chance


def test_the_settings_define_passwords_to_look_for():
    expected = {
        "POSTGRES_PASSWORD",
        "PAYMENT_DB_PASSWORD",
        "SCHEMA_REGISTRY_DB_PASSWORD",
        "KAFKA_ADMIN_PASSWORD",
    }
    assert expected | {"KAFKA_CONTROLLER_PASSWORD", "SCHEMA_REGISTRY_PROVISIONING_PASSWORD"} <= set(
        _secrets()
    )


def test_no_password_is_on_any_command_line():
    args = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    assert "java" in args or "postgres" in args, "the stack's processes are visible to ps"
    shown = [k for k, v in _secrets().items() if v in args]
    assert shown == [], f"on a command line: {shown}"


def test_no_password_is_in_the_stacks_logs():
    logs = Path(os.environ.get("SHOP_STACK_STATE", REPO / ".stack")) / "logs"
    files = sorted(logs.glob("*.log")) if logs.is_dir() else []
    leaks = [f"{f.name}: {k}" for f in files for k, v in _secrets().items() if v.encode() in f.read_bytes()]
    assert leaks == [], f"in the logs: {leaks}"
