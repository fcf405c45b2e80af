"""What the chaos run does to the stack: kill -9 a service or a component of the no-Docker stack, then
bring it back the way an operator (or a supervisor) would, and wait until it is healthy again."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from shared.settings import HEALTH_PORTS
from tests.e2e.support import healthy

REPO = Path(__file__).resolve().parents[2]
STACK = [sys.executable, "-m", "localstack"]
ENV = {**os.environ, "PYTHONPATH": str(REPO / "deploy" / "local")}
INFRASTRUCTURE = ("kafka", "postgres")


def is_infrastructure(target: str) -> bool:
    return target in INFRASTRUCTURE or target.startswith("kafka-")  # kafka-2, kafka-3: more brokers


class ChaosError(Exception):
    pass


@dataclass(frozen=True)
class Kill:
    target: str  # a process of the saga (order, ..., timeline), or kafka (kafka-2, ...), or postgres
    at: float  # seconds into the run
    down_for: float | None  # seconds between the kill and the restart; None: lost for good


def service_pids(service: str) -> list[int]:
    """The processes running `python -m services.<service>`, however they were started (make run, or
    the test session's own)."""
    wanted = f"-m\0services.{service}\0".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if wanted in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                continue  # gone meanwhile
    return pids


def kill(target: str) -> None:
    """SIGKILL: no shutdown hook runs, nothing is flushed, as in a crash or the OOM killer."""
    if is_infrastructure(target):
        pid_file = REPO / ".stack" / "run" / f"{target}.pid"
        try:
            pid = int(pid_file.read_text())
        except (OSError, ValueError) as exc:
            raise ChaosError(f"{target} is not running under the local stack ({pid_file}): {exc}") from exc
        # The process and every process it started: PostgreSQL's backends each lead a session of
        # their own, out of reach of a signal to the postmaster's group.
        doomed = [pid, *_descendants(pid)]
        for p in doomed:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
        # Until reaped, not merely dead: PostgreSQL refuses to start while the pid in its lock file
        # exists, and a zombie does until its new parent (here, init) reaps it.
        _wait_gone([pid], timeout=60, reaped=True)
        return
    pids = service_pids(target)
    if not pids:
        raise ChaosError(f"no {target} process to kill")
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    _wait_gone(pids)


def restart(target: str, timeout: float = 120) -> None:
    """Start it again and wait until it is healthy (for a component, provisioned again too)."""
    command = "up" if is_infrastructure(target) else "run"
    done = subprocess.run(
        [*STACK, command, target],
        cwd=REPO,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise ChaosError(f"restarting {target} failed:\n{done.stdout}{done.stderr}")
    if not is_infrastructure(target):
        deadline = time.monotonic() + timeout
        while not healthy(HEALTH_PORTS[target]):
            if time.monotonic() > deadline:
                raise ChaosError(f"{target} not healthy {timeout:.0f} s after its restart")
            time.sleep(0.2)


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _wait_gone(pids: list[int], timeout: float = 10, reaped: bool = False) -> None:
    deadline = time.monotonic() + timeout
    while any(_exists(p) if reaped else _alive(p) for p in pids):
        if time.monotonic() > deadline:
            raise ChaosError(f"processes {pids} still alive after SIGKILL")
        time.sleep(0.05)


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _alive(pid: int) -> bool:
    if not _exists(pid):
        return False
    # A zombie is dead for our purposes (its parent, e.g. this test session, reaps it later).
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False
