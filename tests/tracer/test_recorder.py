"""The recorder against real eBPF: a C workload with a known syscall mix, counted exactly."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tinyjail import timeline
from tinyjail.errors import BackendUnavailable, TraceError

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module", params=[False, True], ids=["exit-only", "durations"])
def recorded(workload: Path, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
             ) -> timeline.Trace:
    """One recording of the workload while an unrelated process makes the same syscalls: at
    sys_exit only (the default), and with entry timestamps (``durations=True``)."""
    from tinyjail.tracer import record

    if os.geteuid() != 0:
        pytest.skip("needs root")
    noise = subprocess.Popen([sys.executable, "-c",
                              "import os, time\nend = time.time() + 30\n"
                              "while time.time() < end: os.getppid(); os.getuid()"])
    try:
        time.sleep(0.2)
        out = tmp_path_factory.mktemp("rec") / "trace"
        trace = record([str(workload)], output=out, durations=request.param)
    finally:
        noise.kill()
        noise.wait()
    trace.meta["noise_pid"] = noise.pid
    return trace


def _count(trace: timeline.Trace, name: str, **where: int) -> int:
    ev = trace.events
    mask = ev["name"] == name
    for col, value in where.items():
        mask &= ev[col] == value
    return int(mask.sum())


@pytest.mark.bpf
def test_exact_counts_per_process_and_thread(recorded: timeline.Trace) -> None:
    root = recorded.meta["root_pid"]
    procs = recorded.processes
    assert recorded.meta["dropped"] == 0
    assert _count(recorded, "getppid", pid=root, tid=root) == 1000
    forks = procs[(procs["kind"] == "fork") & (procs["ppid"] == root)]
    assert len(forks) == 1
    child = int(forks["pid"].iloc[0])
    assert _count(recorded, "getuid", pid=child) == 7
    assert _count(recorded, "getuid") == 7           # none from the unrelated process
    clones = procs[(procs["kind"] == "clone") & (procs["pid"] == root)]
    assert len(clones) == 1
    thread = int(clones["tid"].iloc[0])
    assert thread != root
    assert _count(recorded, "getgid", pid=root, tid=thread) == 5
    assert set(recorded.events["pid"].unique()) == {root, child}
    # calls that never return are there too: the thread's exit, each process's exit_group
    assert _count(recorded, "exit", pid=root, tid=thread) == 1
    assert _count(recorded, "exit", pid=root, tid=root) == 0
    assert _count(recorded, "exit_group", pid=root, tid=root) == 1
    assert _count(recorded, "exit_group", pid=child) == 1
    ends = recorded.events[recorded.events["name"] == "exit_group"]
    assert sorted(ends["arg0"].tolist()) == [0, 3]


@pytest.mark.bpf
def test_process_rows_and_exit_status(recorded: timeline.Trace, workload: Path) -> None:
    root = recorded.meta["root_pid"]
    procs = recorded.processes
    execs = procs[procs["kind"] == "exec"]
    assert execs["filename"].tolist() == [str(workload)]
    exits = procs[(procs["kind"] == "exit")]
    assert {root}.issubset(set(exits["pid"]))
    child_exit = exits[exits["pid"] != root]
    assert (child_exit["exit_code"] == 0).any()      # _exit(0) -> wait status 0
    assert recorded.meta["exit_status"] == 3
    root_exit = exits[(exits["pid"] == root) & (exits["tid"] == root)]
    assert int(root_exit["exit_code"].iloc[0]) == 3 << 8
    # execve is the first event: recording starts at the command's exec
    first = recorded.events.sort_values("ts").iloc[0]
    assert first["name"] == "execve" and first["path"] == str(workload)


@pytest.mark.bpf
def test_no_events_from_unrelated_process(recorded: timeline.Trace) -> None:
    noise = recorded.meta["noise_pid"]
    assert noise not in set(recorded.events["pid"])
    assert noise not in set(recorded.processes["pid"])


@pytest.mark.bpf
def test_paths_errno_and_durations(recorded: timeline.Trace) -> None:
    ev = recorded.events
    missing = ev[ev["path"] == "/nonexistent-tinyjail-test"]
    assert len(missing) == 1
    assert missing["name"].iloc[0] == "openat"
    assert missing["errno"].iloc[0] == "ENOENT"
    assert int(missing["ret"].iloc[0]) == -2
    ok = ev[ev["path"] == "/etc/hostname"]
    assert len(ok) == 1 and pd.isna(ok["errno"].iloc[0]) and int(ok["ret"].iloc[0]) >= 0
    getppid = ev[ev["name"] == "getppid"]
    if recorded.meta["durations"]:
        assert (getppid["duration_ns"] > 0).all()
    else:
        # exit-only recording: nothing measured, ts is the exit time (so still in call order)
        assert (ev["duration_ns"] == -1).all()
    assert getppid["ts"].is_monotonic_increasing
    assert str(ev["name"].dtype) == "category"


@pytest.mark.bpf
def test_stacks_symbolized_to_libc_and_source_line(recorded: timeline.Trace) -> None:
    ev = recorded.events
    root = recorded.meta["root_pid"]
    ids = set(ev[(ev["name"] == "getppid") & (ev["pid"] == root) & (ev["stack_id"] >= 0)]["stack_id"])
    assert ids, "no stack taken for getppid"
    assert len(ev[(ev["name"] == "getppid") & (ev["stack_id"] >= 0)]) <= recorded.meta["stacks"]["per_site"]
    src = (DATA / "workload.c").read_text().splitlines()
    line = next(i + 1 for i, text in enumerate(src) if "GETPPID_CALL" in text)
    stacks = recorded.stacks[recorded.stacks["stack_id"].isin(ids)]
    inner = stacks[stacks["depth"] == 0]
    assert set(inner["symbol"]) == {"getppid"}
    assert inner["module"].str.contains("libc.so").all()
    caller = stacks[(stacks["depth"] == 1)]
    assert (caller["symbol"] == "main").all()
    assert caller["file"].str.endswith("workload.c").all()
    assert set(caller["line"]) == {line}


@pytest.mark.bpf
def test_short_lived_child_stacks_symbolized(recorded: timeline.Trace) -> None:
    """The 1 ms child is long gone when the trace is symbolized: its getuid stack still resolves."""
    ev = recorded.events
    ids = set(ev[(ev["name"] == "getuid") & (ev["stack_id"] >= 0)]["stack_id"])
    assert ids
    stacks = recorded.stacks[recorded.stacks["stack_id"].isin(ids)]
    assert set(stacks[stacks["depth"] == 0]["symbol"]) == {"getuid"}
    assert (stacks[stacks["depth"] == 1]["symbol"] == "main").all()


@pytest.mark.bpf
def test_complain_mode_logs_what_policy_would_deny(workload: Path, tmp_path: Path) -> None:
    """Under a policy that does not list getuid, complain mode lets it run and the seccomp table
    names it for the child; the trace still has all 7 calls."""
    from tinyjail.tracer import record

    from tinyjail import policy as policy_mod

    base = record([str(workload)], output=tmp_path / "base", stacks=False)
    names = sorted(set(base.events["name"].astype(str)) - {"getuid"})
    pol = policy_mod.from_dict({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": [*names, "execve"], "action": "SCMP_ACT_ALLOW"}],
    })
    trace = record([str(workload)], output=tmp_path / "complain", policy=pol, mode="complain", stacks=False)
    assert trace.meta["exit_status"] == 3
    assert _count(trace, "getuid") == 7
    logged = trace.seccomp[trace.seccomp["name"] == "getuid"]
    assert len(logged) == 7
    assert set(logged["action"]) == {"log"}


@pytest.mark.bpf
@pytest.mark.parametrize("durations", [False, True], ids=["exit-only", "durations"])
def test_enforce_mode_denied_calls_appear_as_exit_without_entry(workload: Path, tmp_path: Path,
                                                                durations: bool) -> None:
    from tinyjail.tracer import record

    from tinyjail import policy as policy_mod

    pol = policy_mod.from_dict({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["getuid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
    })
    trace = record([str(workload)], output=tmp_path / "enforce", policy=pol, mode="enforce", stacks=False,
                   durations=durations)
    assert trace.meta["exit_status"] == 3
    denied = trace.events[trace.events["name"] == "getuid"]
    assert len(denied) == 7
    assert set(denied["errno"].astype(str)) == {"EPERM"}
    assert (denied["duration_ns"] == -1).all()
    if durations:   # allowed calls had their entry seen; the denied ones did not
        allowed = trace.events[trace.events["name"] == "getppid"]
        assert len(allowed) == 1000 and (allowed["duration_ns"] > 0).all()


@pytest.mark.bpf
def test_output_exists_refused_without_force(workload: Path, tmp_path: Path) -> None:
    from tinyjail.tracer import record

    out = tmp_path / "t"
    out.mkdir()
    (out / "keep").write_text("mine")
    with pytest.raises(TraceError, match="already exists"):
        record([str(workload)], output=out)
    assert (out / "keep").read_text() == "mine"


def test_missing_privilege_is_one_clear_line() -> None:
    from tinyjail.tracer.syscalls import environment

    status = "Name:\tx\nCapEff:\t0000000000000000\n"
    why = environment.missing_prerequisite(caps=environment.effective_caps(status))
    assert why is not None and "root or CAP_BPF+CAP_PERFMON" in why and "\n" not in why
    both = (1 << environment.CAP_BPF) | (1 << environment.CAP_PERFMON)
    assert environment.has_bpf_privilege(both)
    assert not environment.has_bpf_privilege(1 << environment.CAP_BPF)
    assert environment.has_bpf_privilege(1 << environment.CAP_SYS_ADMIN)


def test_missing_tracefs_and_headers_are_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from tinyjail.tracer.syscalls import environment

    root = 1 << environment.CAP_SYS_ADMIN
    monkeypatch.setattr(environment.importlib.util, "find_spec", lambda name: object())
    monkeypatch.setattr(environment, "TRACEFS", (tmp_path / "tracing",))
    why = environment.missing_prerequisite(caps=root)
    assert why is not None and "tracefs" in why and "make setup" in why
    (tmp_path / "tracing" / "events" / "raw_syscalls").mkdir(parents=True)
    if not Path("/sys/kernel/kheaders.tar.xz").exists():
        why = environment.missing_prerequisite(caps=root, release="0.0-none")
        assert why is not None and "kernel headers" in why and "0.0-none" in why


def test_probe_refuses_without_privilege(monkeypatch: pytest.MonkeyPatch) -> None:
    from tinyjail.tracer.syscalls import environment, loader

    monkeypatch.setattr(environment, "effective_caps", lambda status=None: 0)
    with pytest.raises(BackendUnavailable, match="CAP_BPF"):
        loader.Probe()


def test_one_million_events_load_under_a_second(tmp_path: Path) -> None:
    n = 1_000_000
    rng = np.random.default_rng(0)
    names = np.array(["read", "write", "openat", "close", "mmap"])
    events = pd.DataFrame({
        "ts": np.cumsum(rng.integers(50, 500, n)).astype("int64"),
        "pid": np.full(n, 42, "int32"), "tid": np.full(n, 42, "int32"),
        "comm": pd.Categorical(np.full(n, "dd")),
        "nr": rng.integers(0, 5, n).astype("int32"),
        "name": pd.Categorical.from_codes(rng.integers(0, 5, n), names),
        "ret": rng.integers(-2, 100, n).astype("int64"),
        "duration_ns": rng.integers(100, 5000, n).astype("int64"),
        "ip": np.full(n, 0x7F0000001000, "uint64"),
    })
    meta = {"command": "synthetic", "argv": ["synthetic"], "cwd": "/", "start_time": "now", "kernel": "x",
            "tinyjail_version": "0", "exit_status": 0, "dropped": 0}
    trace = timeline.Trace(events=events, processes=timeline.empty_frame(timeline.PROCESS_COLUMNS),
                           stacks=timeline.empty_frame(timeline.STACK_COLUMNS),
                           seccomp=timeline.empty_frame(timeline.SECCOMP_COLUMNS), meta=meta)
    timeline.save(trace, tmp_path / "big")
    timeline.load(tmp_path / "big")   # warm the imports
    best = min(_timed_load(tmp_path / "big") for _ in range(3))
    assert best < 1.0, f"1M events took {best:.2f} s to load"


def _timed_load(path: Path) -> float:
    start = time.perf_counter()
    trace = timeline.load(path)
    took = time.perf_counter() - start
    assert len(trace.events) == 1_000_000 and str(trace.events["name"].dtype) == "category"
    return took


def test_importing_the_tracer_does_not_import_bcc() -> None:
    code = ("import sys, tinyjail.tracer; "
            "print(sorted(m for m in ('bcc', 'numpy', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.bpf
def test_exec_from_a_thread_leaves_no_phantom_task(tmp_path: Path) -> None:
    """A non-leader thread that execs takes over the leader's pid; its old tid must not be
    counted as a live task (the recorder would wait for it and report a survivor)."""
    from tinyjail.tracer import record

    code = ("import os, threading\n"
            "t = threading.Thread(target=lambda: os.execv('/bin/true', ['true']))\n"
            "t.start(); t.join()\n")
    trace = record([sys.executable, "-c", code], output=tmp_path / "t", stacks=False, linger=1.0)
    assert trace.meta["survivors"] == 0
    assert trace.meta["exit_status"] == 0
    execs = trace.processes[trace.processes["kind"] == "exec"]
    assert execs["filename"].tolist()[-1] == "/bin/true"


def test_btf_offsets_of_the_running_kernel() -> None:
    """The raw sched hooks read task_struct/linux_binprm at BTF offsets: they must be sane."""
    from tinyjail.tracer.syscalls import btf

    if not btf.VMLINUX.exists():
        pytest.skip("no kernel BTF")
    task = btf.member_offsets("task_struct")
    assert task is not None
    assert task["tgid"] == task["pid"] + 4          # pid_t pid; pid_t tgid; side by side
    assert 0 < task["comm"] < 16384
    assert btf.member_offsets("no_such_struct_here") is None


@pytest.mark.bpf
@pytest.mark.parametrize("raw_sched", [True, False], ids=["raw-sched", "perf-sched"])
def test_fork_exec_exit_rows_with_either_sched_hook(raw_sched: bool, tmp_path: Path,
                                                    record_with_sched_hooks: Callable[..., Any]) -> None:
    """Both ways of hooking fork/exec/exit (raw tracepoints at BTF offsets, or perf tracepoints
    when the kernel has no BTF) follow a child and name what it exec'd."""
    trace = record_with_sched_hooks(["/bin/sh", "-c", "/bin/true; exit 3"], tmp_path / "t", raw_sched,
                                    linger=1.0)
    procs = trace.processes
    forks = procs[procs["kind"] == "fork"]
    assert len(forks) == 1 and str(forks["comm"].iloc[0]) == "sh"
    child = int(forks["pid"].iloc[0])
    execs = procs[procs["kind"] == "exec"]
    assert execs["filename"].tolist() == ["/bin/sh", "/bin/true"]
    assert int(execs["pid"].iloc[1]) == child
    exits = procs[procs["kind"] == "exit"]
    assert set(exits["pid"].astype(int)) == {child, trace.meta["root_pid"]}
    assert trace.meta["exit_status"] == 3
    assert _count(trace, "execve", pid=child) == 1
    assert _count(trace, "exit_group", pid=child) == 1     # from sched_process_exit, or sys_enter
    assert _count(trace, "exit_group", pid=trace.meta["root_pid"]) == 1
