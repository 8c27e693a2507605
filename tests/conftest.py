"""Shared fixtures and the prerequisite policy of the test suite.

Tests that need root, eBPF, runc or chromium carry a marker. On a user's laptop a missing
prerequisite skips the test with the reason; under CI=true it fails the test instead, so a
broken machine can never pass by skipping.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
MOBY_PROFILE = SHARED_DATA / "moby-default-seccomp.json"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _root() -> str | None:
    return None if os.geteuid() == 0 else "needs root (run as root or with sudo)"


def _bpf() -> str | None:
    why = _root()
    if why:
        return why
    try:
        import bcc  # noqa: F401
    except Exception as err:  # bcc missing or broken: say which
        return f"bcc is not importable ({err}); run 'make setup'"
    uname = os.uname().release
    if not Path(f"/lib/modules/{uname}/build/include").exists():
        return f"no kernel headers at /lib/modules/{uname}/build; run 'make setup'"
    if not (Path("/sys/kernel/tracing/events").exists() or Path("/sys/kernel/debug/tracing/events").exists()):
        return "tracefs is not mounted; run 'make setup'"
    return None


def _runc() -> str | None:
    why = _root()
    if why:
        return why
    for tool in ("runc", "busybox"):
        if shutil.which(tool) is None and not Path(f"/bin/{tool}").exists():
            return f"{tool} is not installed; run 'make setup'"
    return None


def _chromium() -> str | None:
    for tool in ("chromium", "chromedriver"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (Debian chromium + chromium-driver); run 'make setup'"
    return None


PREREQUISITES: dict[str, Callable[[], str | None]] = {
    "root": _root,
    "bpf": _bpf,
    "runc": _runc,
    "chromium": _chromium,
}


_CHECKED: dict[str, str | None] = {}


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip (laptop) or fail (CI=true) a test whose prerequisite marker is not met."""
    for marker, check in PREREQUISITES.items():
        if item.get_closest_marker(marker) is None:
            continue
        if marker not in _CHECKED:
            _CHECKED[marker] = check()
        why = _CHECKED[marker]
        if why is None:
            continue
        if IN_CI:
            pytest.fail(f"prerequisite missing under CI=true: {why}", pytrace=False)
        pytest.skip(why)


@pytest.fixture(scope="session")
def build_c(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``build_c(source, *gcc_flags) -> binary``: a C test helper compiled once per session. gcc
    is installed by `make setup`, so its absence fails the test rather than skipping it."""
    built: dict[tuple[Path, tuple[str, ...]], Path] = {}

    def build(source: Path, *flags: str) -> Path:
        key = (source, flags)
        if key not in built:
            if shutil.which("gcc") is None:
                pytest.fail("gcc is not installed; run 'make setup'", pytrace=False)
            exe = tmp_path_factory.mktemp(source.stem) / source.stem
            subprocess.run(["gcc", *flags, "-o", str(exe), str(source)], check=True)
            built[key] = exe
        return built[key]

    return build


@pytest.fixture(scope="session")
def tinyjail_cmd() -> list[str]:
    """The CLI as a subprocess command (the installed console script's module)."""
    return [sys.executable, "-m", "tinyjail"]


@pytest.fixture
def run_cli(tinyjail_cmd: list[str]) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run `tinyjail ARGS...` as a real subprocess; returns the CompletedProcess (text)."""

    def _run(
        *args: str, input: str | None = None, timeout: float = 120, **kw: Any
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*tinyjail_cmd, *args], input=input, capture_output=True, text=True, timeout=timeout, **kw
        )

    return _run


@pytest.fixture(scope="session")
def moby_profile() -> Path:
    """moby's default seccomp profile from ../shared/data (never committed here)."""
    if not MOBY_PROFILE.exists():
        if IN_CI:
            pytest.fail(f"missing test data {MOBY_PROFILE}")
        pytest.skip(f"missing test data {MOBY_PROFILE}")
    return MOBY_PROFILE


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where tests leave screenshots and reports for a human to look at."""
    d = REPO / "test-artifacts"
    d.mkdir(exist_ok=True)
    return d
