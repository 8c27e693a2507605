"""`tinyjail trace` as a real subprocess: exit status, streams, profile, lossy refusal, errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tinyjail import timeline

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.mark.bpf
def test_exit_status_and_streams_pass_through(run_cli: Run, tmp_path: Path) -> None:
    out = tmp_path / "t"
    proc = run_cli("trace", "-o", str(out), "--", "sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 7",
                   cwd=tmp_path)
    assert proc.returncode == 7
    assert proc.stdout == "to-stdout\n"           # tinyjail writes nothing to CMD's stdout
    assert "to-stderr" in proc.stderr
    assert "dropped 0" in proc.stderr
    trace = timeline.load(out)
    assert trace.meta["exit_status"] == 7
    assert (trace.processes["kind"] == "fork").any() or (trace.processes["kind"] == "exec").any()


@pytest.mark.bpf
def test_durations_only_when_asked(run_cli: Run, tmp_path: Path) -> None:
    """Exit-only by default (duration_ns -1, ts at exit); --durations measures every returning call."""
    cmd = ["sh", "-c", "cat /etc/hostname >/dev/null"]
    assert run_cli("trace", "-o", str(tmp_path / "exit"), "--", *cmd).returncode == 0
    assert run_cli("trace", "--durations", "-o", str(tmp_path / "dur"), "--", *cmd).returncode == 0
    plain, timed = timeline.load(tmp_path / "exit"), timeline.load(tmp_path / "dur")
    assert plain.meta["durations"] is False and timed.meta["durations"] is True
    assert (plain.events["duration_ns"] == -1).all()
    ev = timed.events
    # a new child's first return (from vfork/clone, ret 0) has no entry of its own
    child_return = ev["name"].isin(["fork", "vfork", "clone", "clone3"]) & (ev["ret"] == 0)
    returning = ev[~ev["name"].isin(["exit", "exit_group"]) & ~child_return]
    assert len(returning) > 50 and (returning["duration_ns"] >= 0).all()
    for trace in (plain, timed):    # same calls either way, paths included
        names = trace.events["name"].astype(str)
        assert (names == "exit_group").sum() == 2
        assert (trace.events["path"] == "/etc/hostname").sum() == 1


@pytest.mark.bpf
def test_stdin_reaches_the_command(tinyjail_cmd: list[str], tmp_path: Path) -> None:
    proc = subprocess.run([*tinyjail_cmd, "trace", "-o", str(tmp_path / "t"), "--", "cat"], input="hello\n",
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout == "hello\n"


@pytest.mark.bpf
def test_signal_death_is_reported_as_128_plus_n(run_cli: Run, tmp_path: Path) -> None:
    proc = run_cli("trace", "-o", str(tmp_path / "t"), "--", "sh", "-c", "kill -TERM $$")
    assert proc.returncode == 128 + 15


@pytest.mark.bpf
def test_profile_written_from_trace(run_cli: Run, tmp_path: Path) -> None:
    prof = tmp_path / "p.json"
    proc = run_cli("trace", "-o", str(tmp_path / "t"), "--profile", str(prof), "--", "ls", "/")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(prof.read_text())
    names = {n for rule in data["syscalls"] for n in rule["names"]}
    assert {"execve", "exit_group", "getdents64"} <= names
    again = run_cli("trace", "-o", str(tmp_path / "t2"), "--profile", str(prof), "--", "true")
    assert again.returncode == 2 and "already exists" in again.stderr
    assert not (tmp_path / "t2").exists()       # refused before anything ran


@pytest.mark.bpf
def test_lossy_trace_refuses_profile_unless_allowed(run_cli: Run, tmp_path: Path) -> None:
    dd = ["dd", "if=/dev/zero", "of=/dev/null", "bs=1", "count=200000"]
    prof = tmp_path / "p.json"
    proc = run_cli("trace", "--ring-pages", "1", "-o", str(tmp_path / "t"), "--profile", str(prof), "--", *dd)
    assert proc.returncode == 2
    assert "LOSSY" in proc.stderr and "--allow-lossy" in proc.stderr
    assert not prof.exists()
    trace = timeline.load(tmp_path / "t")
    assert trace.lossy and trace.meta["dropped"] > 0
    lost = trace.meta["counters"]
    assert trace.meta["dropped"] == lost["events_lost"] + lost["paths_lost"] + lost["procs_lost"]
    assert len(trace.events) + lost["events_lost"] >= 2 * 200_000   # every read and write accounted for
    ok = run_cli("trace", "--ring-pages", "1", "--allow-lossy", "-o", str(tmp_path / "t2"), "--profile",
                 str(prof), "--", *dd)
    assert ok.returncode == 0, ok.stderr
    assert prof.exists()


@pytest.mark.bpf
def test_export_chrome(run_cli: Run, tmp_path: Path) -> None:
    assert run_cli("trace", "-o", str(tmp_path / "t"), "--", "true").returncode == 0
    out = tmp_path / "c.json"
    proc = run_cli("trace", "--export-chrome", str(tmp_path / "t"), str(out))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text())
    again = run_cli("trace", "--export-chrome", str(tmp_path / "t"), str(out))
    assert again.returncode == 2 and "already exists" in again.stderr
    link = tmp_path / "link.json"
    link.symlink_to(tmp_path / "elsewhere.json")       # dangling: exists() says no, the name is taken
    refused = run_cli("trace", "--export-chrome", str(tmp_path / "t"), str(link))
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert not (tmp_path / "elsewhere.json").exists()
    forced = run_cli("trace", "--export-chrome", str(tmp_path / "t"), str(link), "--force")
    assert forced.returncode == 0, forced.stderr
    assert not link.is_symlink() and json.loads(link.read_text())
    assert not (tmp_path / "elsewhere.json").exists()  # the link was replaced, not written through


def test_missing_command_is_a_usage_error(run_cli: Run) -> None:
    proc = run_cli("trace")
    assert proc.returncode == 2
    assert proc.stderr.startswith("tinyjail: error: no command given")
    assert "Traceback" not in proc.stderr


@pytest.mark.root
def test_unprivileged_user_gets_one_line_with_the_fix(tmp_path: Path) -> None:
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed")
    out = tmp_path / "t"
    proc = subprocess.run([setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
                           sys.executable, "-m", "tinyjail", "trace", "-o", str(out), "--", "true"],
                          capture_output=True, text=True, timeout=120, cwd="/")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "root or CAP_BPF+CAP_PERFMON" in lines[0] and "sudo" in lines[0]
    assert not out.exists()


@pytest.mark.bpf
def test_sigterm_is_forwarded_and_the_trace_still_written(tinyjail_cmd: list[str], tmp_path: Path) -> None:
    import signal
    import time

    out = tmp_path / "t"
    proc = subprocess.Popen([*tinyjail_cmd, "trace", "-o", str(out), "--", "sleep", "60"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(out.glob(".events-*")):
        time.sleep(0.05)      # the recording has started once its events file exists
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    trace = timeline.load(out)
    assert trace.meta["exit_status"] == 128 + signal.SIGTERM
    assert (trace.events["name"] == "clock_nanosleep").any() or (trace.events["name"] == "nanosleep").any()
