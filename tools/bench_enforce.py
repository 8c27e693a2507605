#!/usr/bin/env python3
"""Benchmark: what a tinyjail filter costs a syscall-heavy command.

``dd if=/dev/zero of=/dev/null bs=1 count=1000000`` makes two million syscalls. It is timed
(wall clock, median of N alternating rounds, all measured in this invocation):

* ``none``      - dd alone (the baseline of every ratio);
* ``moby``      - ``tinyjail run --policy moby-default-seccomp.json -- dd ...`` (start-up included);
* ``allowlist`` - ``tinyjail run`` under a ~60-syscall allowlist with argument rules on
  read/write/openat (start-up included);
* ``launcher-*`` - the same two filters loaded by a minimal C launcher
  (tools/bench_seccomp_launcher.c) against the launcher with no filter: the per-syscall cost
  of the filter alone, without tinyjail's Python start-up.

Usage: .venv/bin/python tools/bench_enforce.py [--rounds 7] [--count 1000000] [--moby PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MOBY = REPO.parent / "shared" / "data" / "moby-default-seccomp.json"

O_ACCMODE = 0o3
O_RDONLY = 0
O_WRONLY = 1

ALLOWLIST_NAMES = [
    # start-up of a dynamically linked program (ld.so, libc)
    "execve", "brk", "arch_prctl", "mmap", "mprotect", "munmap", "pread64", "access", "newfstatat", "fstat",
    "close", "set_tid_address", "set_robust_list", "rseq", "prlimit64", "getrandom", "mremap", "madvise",
    # what dd and a typical small tool use
    "lseek", "dup2", "dup3", "fcntl", "fadvise64", "ioctl", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn",
    "sigaltstack", "exit", "exit_group", "getpid", "getppid", "gettid", "getuid", "geteuid", "getgid",
    "getegid", "uname", "clock_gettime", "clock_nanosleep", "nanosleep", "futex", "sched_yield",
    "sched_getaffinity", "poll", "ppoll", "pselect6", "readlink", "readlinkat", "statx", "getcwd", "fsync",
    "fdatasync", "ftruncate", "getdents64", "kill", "tgkill", "wait4", "pipe2",
]
"""~60 names; read, write and openat come with argument rules below."""


def allowlist_policy() -> dict[str, object]:
    """A least-privilege policy for dd: names above, plus read/write on fds < 1024 with a count cap
    (AND of two conditions) and openat read-only OR write-only (two rules, OR-ed)."""
    fd_and_count = [
        {"index": 0, "value": 1024, "op": "SCMP_CMP_LT"},
        {"index": 2, "value": 1 << 20, "op": "SCMP_CMP_LE"},
    ]
    return {
        "defaultAction": "SCMP_ACT_KILL_PROCESS",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [
            {"names": ALLOWLIST_NAMES, "action": "SCMP_ACT_ALLOW"},
            {"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": fd_and_count},
            {"names": ["write"], "action": "SCMP_ACT_ALLOW", "args": fd_and_count},
            {"names": ["openat"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 2, "value": O_ACCMODE, "valueTwo": O_RDONLY, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["openat"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 2, "value": O_ACCMODE, "valueTwo": O_WRONLY, "op": "SCMP_CMP_MASKED_EQ"}]},
        ],
    }


def timed(argv: list[str]) -> tuple[float, float]:
    """(wall-clock seconds, CPU seconds user+sys of the process tree) of one run."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"bench: {' '.join(argv[:6])}... failed with {proc.returncode}: {err.decode()[-400:]}")
    return elapsed, usage.ru_utime + usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7, help="alternating rounds (median taken; >= 5)")
    ap.add_argument("--count", type=int, default=1_000_000, help="dd count (bs=1)")
    ap.add_argument("--moby", type=Path, default=DEFAULT_MOBY, help="moby's default seccomp profile")
    ap.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    opts = ap.parse_args()
    if opts.rounds < 5:
        ap.error("--rounds must be at least 5")
    if not opts.moby.exists():
        ap.error(f"{opts.moby}: not found (moby's profile is read from ../shared/data)")
    if shutil.which("gcc") is None:
        ap.error("gcc is needed for the minimal launcher (make setup)")

    from tinyjail import enforce
    from tinyjail.policy import load, loads

    dd = [shutil.which("dd") or "/bin/dd", "if=/dev/zero", "of=/dev/null", "bs=1", f"count={opts.count}"]
    tinyjail = [sys.executable, "-m", "tinyjail", "run", "--policy"]
    with tempfile.TemporaryDirectory(prefix="bench-enforce-") as tmp_s:
        tmp = Path(tmp_s)
        allow_path = tmp / "allowlist.json"
        allow_path.write_text(json.dumps(allowlist_policy()))
        launcher = tmp / "launcher"
        subprocess.run(["gcc", "-O2", "-o", str(launcher), str(REPO / "tools" / "bench_seccomp_launcher.c")],
                       check=True)
        filters = {}
        policies = {"moby": load(opts.moby), "allowlist": loads(allow_path.read_text(), str(allow_path))}
        for name, pol in policies.items():
            data = enforce.bpf_bytes(enforce.build_filter(pol))
            (tmp / f"{name}.bpf").write_bytes(data)
            filters[name] = len(data) // 8
        configs: dict[str, list[str]] = {
            "none": dd,
            "moby": [*tinyjail, str(opts.moby), "--", *dd],
            "allowlist": [*tinyjail, str(allow_path), "--", *dd],
            "launcher-none": [str(launcher), "-", *dd],
            "launcher-moby": [str(launcher), str(tmp / "moby.bpf"), *dd],
            "launcher-allowlist": [str(launcher), str(tmp / "allowlist.bpf"), *dd],
            "true": ["/bin/true"],
            "tinyjail-true": [*tinyjail, str(opts.moby), "--", "/bin/true"],
        }
        for argv in configs.values():      # warm-up, and proof that dd runs under each filter
            timed(argv)
        samples: dict[str, list[float]] = {k: [] for k in configs}
        cpu: dict[str, list[float]] = {k: [] for k in configs}
        for _ in range(opts.rounds):
            for name, argv in configs.items():
                wall, used = timed(argv)
                samples[name].append(wall)
                cpu[name].append(used)

    med = {k: statistics.median(v) for k, v in samples.items()}
    cmed = {k: statistics.median(v) for k, v in cpu.items()}
    print(f"dd bs=1 count={opts.count}: {2 * opts.count:,} syscalls; "
          f"median of {opts.rounds} alternating rounds")
    print(f"filters: moby {filters['moby']} BPF instructions, allowlist {filters['allowlist']}")
    rows = [
        ("none (dd alone)", "none", "none"),
        ("tinyjail run, moby default profile", "moby", "none"),
        ("tinyjail run, ~60-syscall allowlist + arg rules", "allowlist", "none"),
        ("launcher, no filter", "launcher-none", "none"),
        ("launcher, moby filter only", "launcher-moby", "launcher-none"),
        ("launcher, allowlist filter only", "launcher-allowlist", "launcher-none"),
    ]
    head = f"{'median s':>9} {'min s':>7} {'ratio':>7} {'cpu s':>7} {'cpu ratio':>9}"
    print(f"{'configuration':50} {head}  baseline")
    for label, key, basis in rows:
        ratio, cratio = med[key] / med[basis], cmed[key] / cmed[basis]
        figures = f"{med[key]:9.3f} {min(samples[key]):7.3f} {ratio:6.3f}x {cmed[key]:7.3f} {cratio:8.3f}x"
        print(f"{label:50} {figures}  {'dd alone' if basis == 'none' else 'launcher, no filter'}")
    startup = med["tinyjail-true"] - med["true"]
    print(f"start-up of `tinyjail run --policy moby -- /bin/true`: {med['tinyjail-true']:.3f} s "
          f"(/bin/true alone {med['true']:.3f} s, so {startup:.3f} s is tinyjail's fixed cost)")
    if opts.json:
        summary = {"median_s": med, "cpu_median_s": cmed, "filters_insns": filters, "rounds": opts.rounds,
                   "count": opts.count}
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
