"""The prerequisite check as the users it is for meet it: real uids, real capabilities, real tracefs."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.root

NOBODY = 65534


def _as_nobody_with_bpf_caps(*argv: str) -> subprocess.CompletedProcess[str]:
    """Run argv as uid/gid 65534 holding CAP_BPF+CAP_PERFMON (ambient, so they survive exec)."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.fail("setpriv (util-linux) is not installed")
    return subprocess.run([setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                           "--inh-caps=+bpf,+perfmon", "--ambient-caps=+bpf,+perfmon", *argv],
                          capture_output=True, text=True, timeout=120, cwd="/")


def _tracefs_closed_to_others() -> bool:
    mode = os.stat("/sys/kernel/tracing").st_mode
    return not mode & stat.S_IXOTH


def test_root_sees_tracefs() -> None:
    from tinyjail.tracer.syscalls import environment

    assert environment.tracefs_problem() is None


def test_capabilities_without_tracefs_access_is_one_line_naming_the_uid(tmp_path: Path) -> None:
    if not _tracefs_closed_to_others():
        pytest.skip("tracefs is searchable by everyone here: nothing to refuse")
    out = tmp_path / "t"
    proc = _as_nobody_with_bpf_caps(sys.executable, "-m", "tinyjail", "trace", "-o", str(out), "--", "true")
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("tinyjail: error: tracefs is not readable by uid 65534")
    assert "/sys/kernel/tracing is mode 0700" in lines[0]
    assert "run as root" in lines[0] and "gid=" in lines[0]
    assert not out.exists()


def test_the_check_itself_never_raises_for_that_user() -> None:
    """The same process state calling the library function: a string, not PermissionError."""
    if not _tracefs_closed_to_others():
        pytest.skip("tracefs is searchable by everyone here")
    code = ("from tinyjail.tracer.syscalls import environment as e\n"
            "print(e.has_bpf_privilege(e.effective_caps()))\n"
            "print(e.missing_prerequisite())\n")
    proc = _as_nobody_with_bpf_caps(sys.executable, "-c", code)
    assert proc.returncode == 0, proc.stderr
    privileged, why = proc.stdout.strip().splitlines()
    assert privileged == "True"
    assert why.startswith("tracefs is not readable by uid 65534")
