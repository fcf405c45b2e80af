"""`python -m localstack {install,up,down,status,clean,run,stop}`: the no-Docker stack, one command each.

up/down: the infrastructure (down also stops the services); run/stop: the four services.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import subprocess
import sys
import time
from collections.abc import Callable

from localstack import install
from localstack.components import BrokerCountError, Component, all_components, service_processes
from localstack.paths import STATE
from localstack.process import port_in_use
from shared.settings import PROCESSES, get_settings


class StackError(Exception):
    """A failure the user must act on; its message says what and where."""


def _say(msg: str) -> None:
    print(msg, flush=True)


def cmd_install(_: list[Component]) -> int:
    started = time.monotonic()
    for name, path in install.install_all().items():
        _say(f"  {name:16} {path}")
    _say(f"installed in {time.monotonic() - started:.1f}s")
    return 0


def cmd_up(components: list[Component]) -> int:
    return _start(components, "stack")


def cmd_run(components: list[Component]) -> int:
    """Start the services; the infrastructure must be up."""
    down = [c.name for c in components if c not in _services(components) and not c.healthy()]
    if down:
        raise StackError(f"not healthy: {', '.join(down)}. Start the infrastructure first: make stack-up")
    return _start(_services(components), "services")


def cmd_stop(components: list[Component]) -> int:
    return cmd_down(_services(components))


def _services(components: list[Component]) -> list[Component]:
    return [c for c in components if c.name in PROCESSES]


def _start(components: list[Component], what: str) -> int:
    started = time.monotonic()
    to_start = [c for c in components if c.process.pid() is None]
    _check_ports(to_start)
    for c in to_start:
        _install_for(c)

    launched: list[Component] = []
    try:
        # The registry stores its schemas in PostgreSQL: start it once PostgreSQL is provisioned.
        independent = [c for c in to_start if c.name != "schema-registry"]
        for c in independent:
            c.launch()
            launched.append(c)
        for c in components:
            if c.name == "schema-registry" and c in to_start:
                c.launch()
                launched.append(c)
            _wait_healthy(c)
            c.after_healthy()
            state = "healthy" if c in to_start else "healthy (already running)"
            _say(
                f"  {c.name:16} {state}\n  {'':16} " + "  ".join(f"{k}: {v}" for k, v in c.endpoints.items())
            )
    except Exception as exc:
        _say(
            f"\nstack-up failed: {type(exc).__name__}: {exc}"
            if not isinstance(exc, StackError)
            else f"\nstack-up failed: {exc}"
        )
        for c in reversed(launched):
            if c.process.stop():
                _say(f"  stopped {c.name} (started by this run)")
        still = [c.name for c in components if c.process.pid() is not None]
        if still:
            _say(f"  still running from before: {', '.join(still)} (make stack-down stops them)")
        return 1
    _say(f"{what} up in {time.monotonic() - started:.1f}s; logs in {STATE / 'logs'}")
    return 0


def _install_for(c: Component) -> None:
    installers: dict[str, Callable[[], object]] = {
        "postgres": install.postgres_bin_dir,
        "kafka": install.kafka_libs,
        "schema-registry": install.registry_app,
        "jaeger": install.jaeger_binary,
        "prometheus": install.prometheus_binary,
    }
    if c.name in installers:
        installers[c.name]()


def _check_ports(to_start: list[Component]) -> None:
    for c in to_start:
        for what, port in c.ports.items():
            if port_in_use(port):
                raise StackError(
                    f"port {port} ({c.name} {what}) is already in use by another process; "
                    f"stop it or change the port (see .env.example)"
                )


def _wait_healthy(c: Component) -> None:
    deadline = time.monotonic() + c.start_timeout
    while not c.healthy():
        if c.process.exited():
            raise StackError(
                f"{c.name} exited during start-up. Last lines of {c.process.log_file}:\n"
                f"{c.process.log_tail()}"
            )
        if time.monotonic() > deadline:
            raise StackError(
                f"{c.name} not healthy after {c.start_timeout:.0f}s. Last lines of "
                f"{c.process.log_file}:\n{c.process.log_tail()}"
            )
        time.sleep(0.25)


def cmd_down(components: list[Component]) -> int:
    for c in reversed(components):
        stopped = c.process.stop(timeout=60)
        _say(f"  {c.name:16} {'stopped' if stopped else 'not running'}")
    return 0


def cmd_status(components: list[Component]) -> int:
    total = 0
    all_healthy = True
    _say(f"{'component':16} {'state':10} {'pid':>7} {'memory':>9}  endpoints")
    for c in components:
        pid = c.process.pid()
        if pid is None:
            state, rss = "stopped", 0
        else:
            state, rss = ("healthy" if c.healthy() else "unhealthy"), c.process.rss_bytes()
        all_healthy &= state == "healthy"
        total += rss
        endpoints = "  ".join(f"{k}: {v}" for k, v in c.endpoints.items())
        _say(f"{c.name:16} {state:10} {pid or '-':>7} {rss / 2**20:>7.0f}Mi  {endpoints}")
        _say(f"{'':16} log: {c.process.log_file}")
    _say(f"{'total':16} {'':10} {'':>7} {total / 2**20:>7.0f}Mi")
    return 0 if all_healthy else 1


def cmd_clean(components: list[Component]) -> int:
    cmd_down(components)
    if STATE.is_dir():
        for link in (p for p in STATE.iterdir() if p.is_symlink()):  # state kept outside (Postgres.home)
            kept = link.resolve()
            shutil.rmtree(kept, ignore_errors=True)
            with contextlib.suppress(OSError):
                kept.parent.rmdir()  # this stack's folder there, once empty
    shutil.rmtree(STATE, ignore_errors=True)
    _say(f"removed {STATE}")
    return 0


COMMANDS = {
    "install": cmd_install,
    "up": cmd_up,
    "down": cmd_down,
    "status": cmd_status,
    "clean": cmd_clean,
    "run": cmd_run,
    "stop": cmd_stop,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="localstack", description=__doc__)
    parser.add_argument("command", choices=COMMANDS)
    parser.add_argument(
        "only",
        nargs="*",
        metavar="NAME",
        help="only these components or services (e.g. up kafka, run payment)",
    )
    args = parser.parse_args(argv)
    try:
        settings = get_settings()
        components = all_components(settings)
        if args.command != "up":  # `up` is the infrastructure alone; `run` starts the services
            components += service_processes(settings)
        if args.only:
            unknown = sorted(set(args.only) - {c.name for c in components})
            if unknown:
                known = ", ".join(c.name for c in components)
                parser.error(f"no {', '.join(unknown)} for {args.command} (there are: {known})")
            components = [c for c in components if c.name in args.only]
        return COMMANDS[args.command](components)
    except install.MissingPrerequisite as exc:
        _say(f"missing prerequisite: {exc}")
        return 2
    except BrokerCountError as exc:
        _say(f"stack-{args.command}: {exc}")
        return 2
    except StackError as exc:
        _say(f"stack-{args.command} failed: {exc}")
        return 1
    except subprocess.CalledProcessError as exc:
        _say(f"stack-{args.command} failed: `{' '.join(map(str, exc.cmd))}` exited with {exc.returncode}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
