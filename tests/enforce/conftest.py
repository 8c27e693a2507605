"""Fixtures for the enforcement tests: C helpers compiled into a temp dir, policy files, and
`tinyjail run` as a real subprocess. Syscall numbers come from libseccomp (tinyjail.syscalls)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

HELPERS = Path(__file__).parent / "helpers"


@pytest.fixture(scope="session")
def helpers(build_c: Callable[..., Path]) -> dict[str, str]:
    """Each tests/enforce/helpers/NAME.c compiled with gcc; NAME -> path of the binary."""
    return {src.stem: str(build_c(src, "-O2", "-Wall", "-pthread")) for src in sorted(HELPERS.glob("*.c"))}


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
