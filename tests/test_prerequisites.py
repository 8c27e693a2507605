"""The suite's prerequisite policy: a missing prerequisite skips on a laptop and fails under CI=true."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

PROBE = '''
import pytest

@pytest.mark.chromium
def test_needs_chromium():
    assert True
'''


def _run_probe(tmp_path: Path, ci: str) -> subprocess.CompletedProcess[str]:
    test = tmp_path / "test_probe.py"
    test.write_text(PROBE)
    (tmp_path / "conftest.py").write_text((REPO / "tests" / "conftest.py").read_text())
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PATH"] = str(Path(sys.executable).parent)  # no chromium on this PATH
    if ci:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", os.devnull,
         "--rootdir", str(tmp_path), "-m", "chromium or not chromium", "-o",
         "markers=chromium", str(test)],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120,
    )


def test_missing_prerequisite_skips_on_a_laptop(tmp_path: Path) -> None:
    out = _run_probe(tmp_path, ci="")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 skipped" in out.stdout


def test_missing_prerequisite_fails_under_ci(tmp_path: Path) -> None:
    out = _run_probe(tmp_path, ci="true")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "1 error" in out.stdout  # failed in setup, before the test body
    assert "prerequisite missing under CI=true" in out.stdout


@pytest.mark.parametrize("ci", ["", "true"])
def test_no_tests_is_not_success(tmp_path: Path, ci: str) -> None:
    """pytest exits 5 when it collects nothing; .ci/run runs under `set -e`, so that fails CI."""
    empty = tmp_path / "empty"
    empty.mkdir()
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", os.devnull, str(empty)],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 5
    ci_script = (REPO / ".ci" / "run").read_text()
    assert "set -euo pipefail" in ci_script and "make test" in ci_script
