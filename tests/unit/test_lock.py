"""The locks: every dependency pinned and hashed, in step with pyproject.toml, and what installs Python
packages (make venv, CI, the image) installs from them with --require-hashes."""

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements.lock"
DEV_LOCK = ROOT / "requirements-dev.lock"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")
HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}")


def read_lock(path: Path) -> dict[str, str]:
    """The lock's pins, by normalised name; fails on an entry that is not a pin or has no hash."""
    entries, entry = [], ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not entry and (not stripped or stripped.startswith("#")):
            continue
        entry += " " + stripped.removesuffix("\\")
        if not stripped.endswith("\\"):
            entries.append(entry.strip())
            entry = ""
    assert not entry, f"{path.name} ends inside an entry"
    pins: dict[str, str] = {}
    for text in entries:
        pin = PIN.match(text)
        assert pin, f"{path.name}: not a name==version pin: {text[:80]}"
        assert HASH.search(text), f"{path.name}: {pin[0]} has no --hash"
        leftover = HASH.sub("", text[pin.end() :]).strip()
        assert not leftover, f"{path.name}: {pin[0]} carries more than hashes: {leftover[:80]}"
        name = canonicalize_name(pin[1])
        assert name not in pins, f"{path.name} pins {name} twice"
        pins[name] = pin[2]
    return pins


def runtime_requirements() -> list[Requirement]:
    return [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]


def dev_requirements() -> list[Requirement]:
    build = PYPROJECT["build-system"]["requires"]
    return [
        *runtime_requirements(),
        *map(Requirement, [*PYPROJECT["project"]["optional-dependencies"]["dev"], *build]),
    ]


def assert_locked(lock: Path, requirements: list[Requirement]) -> None:
    pins = read_lock(lock)
    for requirement in requirements:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} (pyproject.toml) is not in {lock.name}: run `make lock`"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{lock.name} pins {name}=={pins[name]}, which {requirement} (pyproject.toml) does not allow: "
            "run `make lock`"
        )


def test_the_runtime_lock_holds_every_runtime_dependency_pinned_and_hashed():
    assert_locked(LOCK, runtime_requirements())


def test_the_dev_lock_holds_every_dependency_dev_tool_and_the_build_backend_pinned_and_hashed():
    assert_locked(DEV_LOCK, dev_requirements())
    assert "pip" in read_lock(DEV_LOCK), "make venv takes pip itself from the lock"


def test_the_image_runs_the_versions_the_tests_ran():
    runtime, dev = read_lock(LOCK), read_lock(DEV_LOCK)
    assert runtime.keys() <= dev.keys(), f"only in requirements.lock: {sorted(runtime.keys() - dev.keys())}"
    differing = {name: (version, dev[name]) for name, version in runtime.items() if dev[name] != version}
    assert not differing, f"requirements.lock and requirements-dev.lock differ: {differing}"


@pytest.mark.parametrize(
    "text",
    [
        "a==1 \\\n    --hash=sha256:" + "0" * 64 + "\nb==2\n",
        "a>=1 \\\n    --hash=sha256:" + "0" * 64 + "\n",
        "-e .\n",
        "a==1 \\\n    --hash=sha256:" + "0" * 64 + " \\\n    --index-url https://example.invalid\n",
    ],
    ids=["no hash", "not pinned", "editable", "an option"],
)
def test_a_lock_entry_without_a_hash_or_a_pin_is_refused(tmp_path, text):
    lock = tmp_path / "requirements.lock"
    lock.write_text(text)
    with pytest.raises(AssertionError):
        read_lock(lock)


def pip_installs(text: str) -> list[str]:
    """Each `pip install` command of a shell text, continuation lines joined."""
    return [line for line in text.replace("\\\n", " ").splitlines() if re.search(r"\bpip3? install\b", line)]


def test_the_image_installs_the_runtime_lock_with_hashes_and_nothing_else():
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    installs = pip_installs(dockerfile)
    assert installs, "the Dockerfile installs no Python package"
    for line in installs:
        assert re.search(r"pip install (.* )?--require-hashes -r requirements\.lock\b", line), line
    assert re.search(r"^COPY requirements\.lock ", dockerfile, re.M)


def test_make_venv_installs_the_dev_lock_with_hashes_then_the_project_alone():
    makefile = (ROOT / "Makefile").read_text()
    stamp = re.search(r"^\$\(VENV\)/\.installed:(.*)\n((?:\t.*\n)+)", makefile, re.M)
    assert stamp, "no $(VENV)/.installed rule in the Makefile"
    assert "requirements-dev.lock" in stamp[1].split(), "the venv's stamp must depend on the lock"
    installs = pip_installs(stamp[2])
    assert any(re.search(r"--require-hashes -r requirements-dev\.lock\b", line) for line in installs)
    for line in pip_installs(makefile):
        assert "--require-hashes" in line or ("--no-deps" in line and "--no-build-isolation" in line), line


def test_ci_installs_python_packages_through_make_venv_only():
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make venv$", ci, re.M)
    assert not pip_installs(ci), "CI installs Python packages with make venv, from the lock"
