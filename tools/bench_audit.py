#!/usr/bin/env python3
"""How fast SeccompAuditReader takes in seccomp LOG records, and what it costs the workload.

A child loads a pyseccomp filter that LOGs getppid and calls it N times. Each run is timed
from fork to the last record received (reader) or to the child's exit (baseline: the kernel
still builds every record, but nobody listens). Prints the median of alternating runs, the
ratio to the baseline, records/s and the count check (received must equal N, lost 0).

Usage: sudo .venv/bin/python tools/bench_audit.py [-n 100000] [-r 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import pyseccomp

from tinyjail.audit import SeccompAuditReader


def _child(n: int) -> int:
    pid = os.fork()
    if pid == 0:
        f = pyseccomp.SyscallFilter(pyseccomp.ALLOW)
        f.add_rule(pyseccomp.LOG, "getppid")
        f.load()
        for _ in range(n):
            os.getppid()
        os._exit(0)
    return pid


def baseline(n: int) -> float:
    t0 = time.perf_counter()
    os.waitpid(_child(n), 0)
    return time.perf_counter() - t0


def with_reader(n: int) -> tuple[float, int, int]:
    reader = SeccompAuditReader().start()
    t0 = time.perf_counter()
    pid = _child(n)
    os.waitpid(pid, 0)
    reader.close()
    elapsed = time.perf_counter() - t0
    reader.pids = lambda p: p == pid
    return elapsed, len(reader.records()), reader.lost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=100_000, help="logged calls per run")
    parser.add_argument("-r", "--runs", type=int, default=5)
    args = parser.parse_args()
    base: list[float] = []
    read: list[float] = []
    counts: list[tuple[int, int]] = []
    for _ in range(args.runs):
        base.append(baseline(args.n))
        elapsed, got, lost = with_reader(args.n)
        read.append(elapsed)
        counts.append((got, lost))
    b, r = statistics.median(base), statistics.median(read)
    exact = sum(1 for got, lost in counts if got == args.n and lost == 0)
    print(f"N={args.n} runs={args.runs}")
    print(f"baseline (no listener)     {b:8.3f} s")
    print(f"with SeccompAuditReader    {r:8.3f} s   ratio {r / b:5.2f}x   {args.n / r:,.0f} records/s")
    print(f"exact counts               {exact}/{args.runs} runs received {args.n:,} records with lost=0")
    for got, lost in counts:
        if got != args.n or lost:
            print(f"  run: received {got:,} lost {lost:,}")


if __name__ == "__main__":
    main()
