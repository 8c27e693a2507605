"""Synthetic but realistic traces, for the dashboard's tests and its 1M-event benchmark.

A real recording needs root and eBPF; the dashboard's views must be exercised without them and
at sizes (a million events) a short recording does not reach. The trace follows the schema of
`tinyjail.timeline` exactly: a shell-like parent forks workers, some of them start threads,
every task execs and exits, syscalls carry stacks, and a few calls produced seccomp log records.
Syscall numbers come from libseccomp through `tinyjail.syscalls`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tinyjail import syscalls
from tinyjail.timeline import (
    EVENT_COLUMNS,
    PROCESS_COLUMNS,
    SECCOMP_COLUMNS,
    STACK_COLUMNS,
    Trace,
    conform,
    errno_name,
)

# What a small C/Python service does most (weights are relative frequencies).
PROFILE: dict[str, float] = {
    "read": 22,
    "write": 14,
    "openat": 9,
    "close": 9,
    "newfstatat": 7,
    "fstat": 5,
    "mmap": 5,
    "munmap": 2,
    "mprotect": 2,
    "brk": 1.5,
    "lseek": 3,
    "pread64": 2,
    "getdents64": 1.5,
    "futex": 6,
    "epoll_wait": 3,
    "epoll_ctl": 1,
    "poll": 1,
    "clock_nanosleep": 0.5,
    "socket": 0.3,
    "connect": 0.3,
    "sendto": 1.2,
    "recvfrom": 1.2,
    "getpid": 0.6,
    "gettid": 0.4,
    "rt_sigaction": 0.8,
    "rt_sigprocmask": 1.5,
    "ioctl": 0.8,
    "fcntl": 0.8,
    "access": 0.3,
    "readlink": 0.2,
    "getrandom": 0.1,
    "prctl": 0.05,
    "uname": 0.05,
    "sysinfo": 0.02,
}
"""Syscalls and relative weights of the synthetic workload."""

PATH_SYSCALLS = ("openat", "newfstatat", "access", "readlink")
FAILING = {"openat": 2, "newfstatat": 2, "access": 2, "connect": 111, "readlink": 22}  # errno when it fails
_ARG_CHOICES: tuple[tuple[str, int, tuple[int, ...]], ...] = (
    ("ioctl", 1, (0x5401, 0x541B, 0x5413)),  # TCGETS, FIONREAD, TIOCGWINSZ
    ("prctl", 0, (15, 16)),  # PR_SET_NAME, PR_GET_NAME
    ("socket", 0, (1, 2)),  # AF_UNIX, AF_INET
    ("socket", 1, (0x80001,)),  # SOCK_STREAM|SOCK_CLOEXEC
    ("fcntl", 1, (1, 2, 3, 4)),  # F_GETFD, F_SETFD, F_GETFL, F_SETFL
    ("rt_sigprocmask", 0, (0, 1, 2)),  # SIG_BLOCK, SIG_UNBLOCK, SIG_SETMASK
)
"""(syscall, argument index, values it takes) for arguments whose value means something."""
LIBC = "/usr/lib/x86_64-linux-gnu/libc.so.6"
MAIN = "/usr/bin/worker"


def _stacks(
    rng: np.random.Generator, names: list[str], per_name: int
) -> tuple[pd.DataFrame, dict[str, list[int]]]:
    """A few distinct call paths per syscall: main -> app functions -> libc wrapper."""
    rows: list[dict[str, object]] = []
    by_name: dict[str, list[int]] = {}
    callers = ["handle_request", "load_config", "flush_log", "accept_loop", "worker_main", "cache_fill"]
    sid = 0
    for nm in names:
        ids = []
        for k in range(per_name):
            depth_app = 1 + (k % 3)
            frames = [(LIBC, f"__libc_{nm}", 0x10 + k)]
            for d in range(depth_app):
                frames.append((MAIN, callers[(k + d + len(nm)) % len(callers)], 0x40 + 8 * d))
            frames += [(MAIN, "main", 0x120), (LIBC, "__libc_start_call_main", 0x7A)]
            for depth, (module, symbol, off) in enumerate(frames):
                rows.append(
                    {
                        "stack_id": sid,
                        "depth": depth,
                        "ip": 0x7F0000000000 + sid * 0x100 + depth,
                        "module": module,
                        "symbol": symbol,
                        "offset": off,
                        "file": "worker.c" if module == MAIN else None,
                        "line": 100 + depth if module == MAIN else -1,
                        "count": 0,
                    }
                )
            ids.append(sid)
            sid += 1
        by_name[nm] = ids
    return pd.DataFrame(rows), by_name


def make_trace(
    events: int = 20_000,
    processes: int = 4,
    threads_per_process: int = 2,
    duration_s: float = 5.0,
    seed: int = 7,
    command: str = "worker --serve",
    dropped: int = 0,
    weights: dict[str, float] | None = None,
) -> Trace:
    """A trace of ``events`` syscalls spread over ``processes`` x ``threads_per_process`` tasks."""
    rng = np.random.default_rng(seed)
    prof = weights or PROFILE
    names = list(prof)
    p = np.array([prof[n] for n in names], dtype=float)
    p /= p.sum()
    t0 = 1_000_000_000_000
    span = int(duration_s * 1e9)

    # Tasks: pid 4000 is the parent shell, workers 4001.. each with threads.
    tasks: list[tuple[int, int, str, int, int]] = []  # pid, tid, comm, start, end
    proc_rows: list[dict[str, object]] = []
    parent = 4000
    tasks.append((parent, parent, "sh", t0, t0 + span))
    proc_rows.append(
        {
            "ts": t0,
            "kind": "exec",
            "pid": parent,
            "tid": parent,
            "ppid": -1,
            "comm": "sh",
            "filename": "/bin/sh",
            "exit_code": -1,
        }
    )
    next_tid = parent + 1
    for w in range(processes):
        pid = next_tid
        next_tid += 1
        start = t0 + int(span * 0.02 * (w + 1))
        end = t0 + span - int(span * 0.01 * (w + 1))
        proc_rows.append(
            {
                "ts": start,
                "kind": "fork",
                "pid": pid,
                "tid": pid,
                "ppid": parent,
                "comm": "sh",
                "filename": None,
                "exit_code": -1,
            }
        )
        proc_rows.append(
            {
                "ts": start + 50_000,
                "kind": "exec",
                "pid": pid,
                "tid": pid,
                "ppid": -1,
                "comm": "worker",
                "filename": MAIN,
                "exit_code": -1,
            }
        )
        tasks.append((pid, pid, "worker", start + 50_000, end))
        for _ in range(threads_per_process - 1):
            tid = next_tid
            next_tid += 1
            tstart = start + int(span * 0.05)
            tend = end - int(span * 0.02)
            proc_rows.append(
                {
                    "ts": tstart,
                    "kind": "clone",
                    "pid": pid,
                    "tid": tid,
                    "ppid": pid,
                    "comm": "worker",
                    "filename": None,
                    "exit_code": -1,
                }
            )
            proc_rows.append(
                {
                    "ts": tend,
                    "kind": "exit",
                    "pid": pid,
                    "tid": tid,
                    "ppid": -1,
                    "comm": "worker",
                    "filename": None,
                    "exit_code": 0,
                }
            )
            tasks.append((pid, tid, "worker", tstart, tend))
        proc_rows.append(
            {
                "ts": end,
                "kind": "exit",
                "pid": pid,
                "tid": pid,
                "ppid": -1,
                "comm": "worker",
                "filename": None,
                "exit_code": 0 if w else 256,
            }
        )
    proc_rows.append(
        {
            "ts": t0 + span,
            "kind": "exit",
            "pid": parent,
            "tid": parent,
            "ppid": -1,
            "comm": "sh",
            "filename": None,
            "exit_code": 0,
        }
    )

    # Events: each task gets a share; timestamps uniform within its lifetime, sorted.
    task_idx = rng.integers(0, len(tasks), size=events)
    starts = np.array([t[3] for t in tasks], dtype=np.int64)
    ends = np.array([t[4] for t in tasks], dtype=np.int64)
    ts = starts[task_idx] + (rng.random(events) * (ends - starts)[task_idx]).astype(np.int64)
    order = np.argsort(ts, kind="stable")
    ts = ts[order]
    task_idx = task_idx[order]
    name_idx = rng.choice(len(names), size=events, p=p)
    name_arr = np.array(names, dtype=object)[name_idx]
    nr_of = {n: syscalls.number(n) for n in names}
    nr = np.array([nr_of[n] if nr_of[n] is not None else -1 for n in names], dtype=np.int32)[name_idx]
    ev_pid = np.array([t[0] for t in tasks], dtype=np.int32)[task_idx]
    ev_tid = np.array([t[1] for t in tasks], dtype=np.int32)[task_idx]
    comm = np.array([t[2] for t in tasks], dtype=object)[task_idx]

    ret = rng.integers(0, 4096, size=events).astype(np.int64)
    fail_codes = np.zeros(len(names), dtype=np.int64)
    for i, n in enumerate(names):
        fail_codes[i] = FAILING.get(n, 0)
    fails = (fail_codes[name_idx] > 0) & (rng.random(events) < 0.15)
    ret[fails] = -fail_codes[name_idx][fails]
    errno_codes = {int(c): errno_name(-int(c)) for c in set(FAILING.values())}
    errno_col = pd.Series([None] * events, dtype="object")
    if fails.any():
        errno_col[fails] = [errno_codes[int(c)] for c in (-ret[fails])]

    stacks, by_name = _stacks(rng, names, per_name=3)
    first_stack = np.array([by_name[n][0] for n in names], dtype=np.int32)
    stack_id = (first_stack[name_idx] + rng.choice(3, size=events, p=[0.7, 0.2, 0.1])).astype(np.int32)
    counts = np.bincount(stack_id, minlength=len(stacks["stack_id"].unique()))
    stacks["count"] = counts[stacks["stack_id"].to_numpy()]

    is_path = np.isin(name_arr, PATH_SYSCALLS)
    files = np.array(
        [
            "/etc/worker.conf",
            "/var/lib/worker/cache.db",
            "/etc/ld.so.cache",
            "/proc/self/status",
            "/usr/share/zoneinfo/UTC",
        ],
        dtype=object,
    )
    path_col = pd.Series([None] * events, dtype="object")
    if is_path.any():
        path_col[is_path] = files[rng.integers(0, len(files), size=int(is_path.sum()))]

    # Arguments a profile narrows get realistic values (requests, options, families), not noise.
    arg0 = rng.integers(0, 64, size=events).astype(np.uint64)
    arg1 = rng.integers(0, 1 << 40, size=events).astype(np.uint64)
    arg2 = rng.integers(0, 8192, size=events).astype(np.uint64)
    for nm, index, choices in _ARG_CHOICES:
        sel = name_arr == nm
        if sel.any():
            picked = np.array(choices, dtype=np.uint64)[rng.integers(0, len(choices), size=int(sel.sum()))]
            (arg0, arg1, arg2)[index][sel] = picked
    ev = pd.DataFrame(
        {
            "ts": ts,
            "pid": ev_pid,
            "tid": ev_tid,
            "comm": comm,
            "nr": nr,
            "name": name_arr,
            "arg0": arg0,
            "arg1": arg1,
            "arg2": arg2,
            "arg3": np.zeros(events, dtype=np.uint64),
            "arg4": np.zeros(events, dtype=np.uint64),
            "arg5": np.zeros(events, dtype=np.uint64),
            "ret": ret,
            "errno": errno_col,
            "duration_ns": rng.integers(200, 200_000, size=events).astype(np.int64),
            "stack_id": stack_id,
            "ip": (0x7F0000001000 + stack_id.astype(np.uint64)),
            "path": path_col,
        }
    )

    # Seccomp log records for a couple of rare calls (as complain mode would produce), joined to
    # their calls like the recorder does: the call's ts and tid, the coarse stamp in audit_ts.
    rare = ev[ev["name"].isin(["prctl", "sysinfo", "uname"])].head(25)
    sec = pd.DataFrame(
        {
            "ts": rare["ts"].to_numpy(),
            "audit_ts": rare["ts"].to_numpy() // 4_000_000 * 4_000_000,
            "serial": np.arange(len(rare), dtype=np.int64) + 5000,
            "pid": rare["pid"].to_numpy(),
            "tid": rare["tid"].to_numpy(),
            "comm": rare["comm"].to_numpy(),
            "exe": MAIN,
            "nr": rare["nr"].to_numpy(),
            "name": rare["name"].astype(str).to_numpy(),
            "arch": "x86_64",
            "action": "log",
            "ip": rare["ip"].to_numpy(),
            "sig": 0,
        }
    )

    meta = {
        "command": command,
        "argv": command.split(),
        "cwd": "/srv",
        "start_time": "2026-01-01T00:00:00Z",
        "kernel": "6.18.0",
        "tinyjail_version": "0.1.0",
        "exit_status": 0,
        "dropped": int(dropped),
        "start_ns": t0,
        "duration_ns": span,
        "synthetic": True,
    }
    return Trace(
        events=conform(ev, EVENT_COLUMNS),
        processes=conform(pd.DataFrame(proc_rows), PROCESS_COLUMNS),
        stacks=conform(stacks, STACK_COLUMNS),
        seccomp=conform(sec, SECCOMP_COLUMNS),
        meta=meta,
    )


__all__ = ["PROFILE", "make_trace"]
