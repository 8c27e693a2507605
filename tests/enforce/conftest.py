"""Fixtures for the enforcement tests: C helpers compiled into a temp dir, policy files, and
`tinyjail run` as a real subprocess. Syscall numbers come from libseccomp (tinyjail.syscalls)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

HELPERS = Path(__file__).parent / "helpers"


@pytest.fixture(scope="session")
def helpers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Each tests/enforce/helpers/NAME.c compiled with gcc; NAME -> path of the binary."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed; run 'make setup'")
    out = tmp_path_factory.mktemp("helpers")
    built = {}
    for src in sorted(HELPERS.glob("*.c")):
        exe = out / src.stem
        subprocess.run(["gcc", "-O2", "-Wall", "-pthread", "-o", str(exe), str(src)], check=True)
        built[src.stem] = str(exe)
    return built


@pytest.fixture
def policy_file(tmp_path: Path) -> Callable[..., Path]:
    """Write a policy dict as JSON into tmp_path and return its path."""
    count = iter(range(1000))

    def write(obj: dict[str, Any], name: str | None = None) -> Path:
        p = tmp_path / (name or f"policy{next(count)}.json")
        p.write_text(json.dumps(obj))
        return p

    return write


@pytest.fixture
def jail(
    run_cli: Callable[..., subprocess.CompletedProcess[str]],
) -> Callable[..., subprocess.CompletedProcess[str]]:
    """`tinyjail run --policy P [OPTIONS] -- CMD...` as a subprocess."""

    def run(
        policy: Path, *cmd: str, options: tuple[str, ...] = (), **kw: Any
    ) -> subprocess.CompletedProcess[str]:
        return run_cli("run", "--policy", str(policy), *options, "--", *cmd, **kw)

    return run
