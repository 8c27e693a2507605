"""Fixtures shared by the tracer tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def workload(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/tracer/data/workload.c built with -g and frame pointers (gcc is installed by make setup)."""
    if shutil.which("gcc") is None:
        pytest.fail("gcc is not installed; run 'make setup'")
    out = tmp_path_factory.mktemp("workload") / "workload"
    subprocess.run(["gcc", "-g", "-O0", "-fno-omit-frame-pointer", "-pthread", "-o", str(out),
                    str(DATA / "workload.c")], check=True)
    return out
