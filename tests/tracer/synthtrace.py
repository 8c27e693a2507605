"""Build realistic in-memory traces (the schema of tinyjail.timeline) for tests that must not need eBPF.

The calls mimic what `sh -c 'ls /etc | head'` makes after exec: the loader, file opens, a unix
socket to nscd, a fork with clone(), terminal ioctls, prctl and personality. Every number comes
from libseccomp (tinyjail.syscalls) or a symbolic constant (tinyjail.symbols), never typed here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from tinyjail import syscalls
from tinyjail.symbols import parse
from tinyjail.timeline import (
    EVENT_COLUMNS,
    PROCESS_COLUMNS,
    SECCOMP_COLUMNS,
    STACK_COLUMNS,
    Trace,
    conform,
    errno_name,
)

AT_FDCWD = (1 << 64) - 100
LIBC = "/usr/lib/x86_64-linux-gnu/libc.so.6"


@dataclass
class Call:
    """One syscall to put in a synthetic trace; ``args`` are symbolic strings or ints."""

    name: str
    args: Sequence[int | str] = ()
    ret: int = 0
    path: str | None = None
    pid: int = 4242
    tid: int | None = None
    comm: str = "ls"
    stack: Sequence[tuple[str, str, int]] | None = None  # (module, symbol, offset) innermost first
    extra: dict[str, Any] = field(default_factory=dict)


def value(name: str, index: int, arg: int | str) -> int:
    if isinstance(arg, int):
        return arg & ((1 << 64) - 1)
    return parse(name, index, arg)


def build(
    calls: Sequence[Call],
    *,
    t0: int = 10_000_000_000,
    dropped: int = 0,
    command: str = "ls",
    seccomp: Sequence[dict[str, Any]] = (),
    processes: Sequence[dict[str, Any]] | None = None,
) -> Trace:
    """A Trace whose events are ``calls`` in order, 1 µs apart, each lasting 400 ns."""
    rows = []
    stack_rows: list[dict[str, Any]] = []
    stack_ids: dict[tuple[tuple[str, str, int], ...], int] = {}
    for i, c in enumerate(calls):
        nr = syscalls.number(c.name)
        assert nr is not None, c.name
        vals = [value(c.name, k, a) for k, a in enumerate(c.args)] + [0] * (6 - len(c.args))
        sid = -1
        ip = 0x7F00_0000_1000 + 16 * nr
        if c.stack:
            key = tuple(c.stack)
            if key not in stack_ids:
                stack_ids[key] = len(stack_ids)
                for depth, (module, symbol, off) in enumerate(key):
                    stack_rows.append(
                        {
                            "stack_id": stack_ids[key],
                            "depth": depth,
                            "ip": ip + depth * 0x100,
                            "module": module,
                            "symbol": symbol,
                            "offset": off,
                            "file": None,
                            "line": -1,
                            "count": 0,
                        }
                    )
            sid = stack_ids[key]
        rows.append(
            {
                "ts": t0 + 1000 * i,
                "pid": c.pid,
                "tid": c.tid if c.tid is not None else c.pid,
                "comm": c.comm,
                "nr": nr,
                "name": c.name,
                **{f"arg{k}": vals[k] for k in range(6)},
                "ret": c.ret,
                "errno": errno_name(c.ret),
                "duration_ns": 400,
                "stack_id": sid,
                "ip": ip,
                "path": c.path,
                **c.extra,
            }
        )
    events = conform(pd.DataFrame(rows), EVENT_COLUMNS) if rows else conform(pd.DataFrame(), EVENT_COLUMNS)
    stacks = conform(pd.DataFrame(stack_rows), STACK_COLUMNS)
    if len(stacks):
        counts = events[events["stack_id"] >= 0].groupby("stack_id").size()
        stacks["count"] = stacks["stack_id"].map(counts).fillna(0).astype("int64")
    pids = sorted({(c.pid, c.comm) for c in calls})
    if processes is None:
        processes = [
            {
                "ts": t0 - 500,
                "kind": "exec",
                "pid": pid,
                "tid": pid,
                "ppid": -1,
                "comm": comm,
                "filename": f"/usr/bin/{comm}",
                "exit_code": -1,
            }
            for pid, comm in pids
        ]
        processes += [
            {
                "ts": t0 + 1000 * len(calls) + 10,
                "kind": "exit",
                "pid": pid,
                "tid": pid,
                "ppid": -1,
                "comm": comm,
                "filename": None,
                "exit_code": 0,
            }
            for pid, comm in pids
        ]
    procs = conform(pd.DataFrame(list(processes)), PROCESS_COLUMNS)
    sc = conform(pd.DataFrame(list(seccomp)), SECCOMP_COLUMNS)
    meta = {
        "command": command,
        "argv": [command],
        "cwd": "/",
        "start_time": "2026-01-01T00:00:00Z",
        "kernel": os.uname().release,
        "tinyjail_version": "test",
        "exit_status": 0,
        "dropped": dropped,
    }
    return Trace(events=events, processes=procs, stacks=stacks, seccomp=sc, meta=meta)


OPEN_STACK = ((LIBC, "__open64_nocancel", 0x2B), (LIBC, "opendir", 0x1F), ("/usr/bin/ls", None, 0x4D12))


def ls_like() -> Trace:
    """What `sh -c 'ls -l /etc | head -1'` does after exec, in two processes."""
    sh, ls = 4241, 4242
    calls = [
        Call("brk", [0], ret=0x5555_0000, pid=sh, comm="sh"),
        Call("arch_prctl", [0x3001, 0x7FFD_0000], ret=-22, pid=sh, comm="sh"),
        Call(
            "mmap",
            [0, 8192, "PROT_READ|PROT_WRITE", "MAP_PRIVATE|MAP_ANONYMOUS", (1 << 64) - 1, 0],
            ret=0x7F00_0000,
            pid=sh,
            comm="sh",
        ),
        Call("access", [0x5555_1000, 4], ret=-2, path="/etc/ld.so.preload", pid=sh, comm="sh"),
        Call(
            "openat",
            [AT_FDCWD, 0x5555_2000, "O_RDONLY|O_CLOEXEC"],
            ret=3,
            path="/etc/ld.so.cache",
            pid=sh,
            comm="sh",
        ),
        Call("newfstatat", [3, 0x5555_3000, 0x7FFD_1000, 0x1000], pid=sh, comm="sh"),
        Call("close", [3], pid=sh, comm="sh"),
        Call("prctl", ["PR_SET_NAME", 0x5555_4000], pid=sh, comm="sh"),
        Call("personality", [0xFFFFFFFF], ret=0, pid=sh, comm="sh"),
        Call("pipe2", [0x7FFD_2000, "O_CLOEXEC"], pid=sh, comm="sh"),
        Call(
            "clone",
            ["CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD", 0, 0, 0x7F00_1000, 0],
            ret=ls,
            pid=sh,
            comm="sh",
        ),
        Call(
            "openat",
            [AT_FDCWD, 0x5555_5000, "O_RDONLY|O_NONBLOCK|O_CLOEXEC|O_DIRECTORY"],
            ret=3,
            path="/etc",
            stack=OPEN_STACK,
        ),
        Call("getdents64", [3, 0x5555_6000, 32768], ret=4000),
        Call("getdents64", [3, 0x5555_6000, 32768], ret=0),
        Call("socket", ["AF_UNIX", "SOCK_STREAM|SOCK_CLOEXEC|SOCK_NONBLOCK", 0], ret=4),
        Call("connect", [4, 0x7FFD_3000, 110], ret=-2, path="/var/run/nscd/socket"),
        Call("socket", ["AF_INET", "SOCK_DGRAM|SOCK_CLOEXEC", 0], ret=5),
        Call("ioctl", [1, "TCGETS", 0x7FFD_4000], ret=-25),
        Call("ioctl", [1, "TIOCGWINSZ", 0x7FFD_5000], ret=-25),
        Call(
            "openat",
            [AT_FDCWD, 0x5555_7000, "O_RDONLY|O_CLOEXEC"],
            ret=-2,
            path="/etc/nonexistent",
            stack=OPEN_STACK,
        ),
        Call("write", [1, 0x5555_8000, 12], ret=12),
        Call("wait4", [(1 << 64) - 1, 0x7FFD_6000, 0, 0], ret=ls, pid=sh, comm="sh"),
        Call("exit_group", [0]),
        Call("exit_group", [0], pid=sh, comm="sh"),
    ]
    return build(calls, command="sh")
