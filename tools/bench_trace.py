#!/usr/bin/env python3
"""Benchmark `tinyjail trace` against plain execution, the eBPF floor and strace.

Workload: ``dd if=/dev/zero of=/dev/null bs=1 count=N`` (2 syscalls per byte). Every variant
is timed as a whole command (Python start-up, bcc compile, Parquet writing included) and
compared with the plain run of the same invocation. Runs are interleaved and repeated; the
medians are reported because other work shares this machine.

    floor      a no-op RAW_TRACEPOINT_PROBE on sys_exit: what merely enabling the hook the
               default recording uses costs (Python + a bcc compile of the no-op included;
               the tracer loads its compiled program from a cache after its first run)
    floor2     the same on sys_enter and sys_exit: the floor of `trace --durations`
    trace      tinyjail trace --no-stacks -o T -- dd ...   (every event written to Parquet)
    trace+st   tinyjail trace -o T -- dd ...                (stacks on, the default)
    trace+dur  tinyjail trace --durations -o T -- dd ...    (stacks on, entry hooked too)
    strace     strace -f -o /dev/null dd ... at a smaller N (it is ~100-500x slower), scaled to N:
               plain(N) + (strace(n) - plain(n)) * N / n

Usage: tools/bench_trace.py [-n 5000000] [--strace-n 50000] [-r 3]
       tools/bench_trace.py --probes [-n 2000000]   # hook styles: raw vs regular tracepoints, hash vs array
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

FLOOR = r"""
import subprocess, sys
from bcc import BPF
text = b'RAW_TRACEPOINT_PROBE(sys_exit) { return 0; }\n'
if sys.argv[1] == "enter+exit":
    text += b'RAW_TRACEPOINT_PROBE(sys_enter) { return 0; }\n'
b = BPF(text=text)
sys.exit(subprocess.run(sys.argv[2:], stderr=subprocess.DEVNULL).returncode)
"""


PROBES: dict[str, str] = {
    "raw tracepoint sys_exit only, no-op": """
RAW_TRACEPOINT_PROBE(sys_exit) { return 0; }
""",
    "raw tracepoints, no-op": """
RAW_TRACEPOINT_PROBE(sys_enter) { return 0; }
RAW_TRACEPOINT_PROBE(sys_exit) { return 0; }
""",
    "TRACEPOINT_PROBE(raw_syscalls), no-op": """
TRACEPOINT_PROBE(raw_syscalls, sys_enter) { return 0; }
TRACEPOINT_PROBE(raw_syscalls, sys_exit) { return 0; }
""",
    "raw tracepoints + pid hash lookup": """
BPF_HASH(tracked, u32, u8, 65536);
RAW_TRACEPOINT_PROBE(sys_enter) { u32 k = bpf_get_current_pid_tgid() >> 32; return tracked.lookup(&k) != 0; }
RAW_TRACEPOINT_PROBE(sys_exit) { u32 k = bpf_get_current_pid_tgid() >> 32; return tracked.lookup(&k) != 0; }
""",
    "raw tracepoints + pid array lookup": """
BPF_ARRAY(tracked, u8, 4194304);
RAW_TRACEPOINT_PROBE(sys_enter) { u32 k = bpf_get_current_pid_tgid() >> 32; u8 *v = tracked.lookup(&k);
  return v && *v; }
RAW_TRACEPOINT_PROBE(sys_exit) { u32 k = bpf_get_current_pid_tgid() >> 32; u8 *v = tracked.lookup(&k);
  return v && *v; }
""",
}

PROBE_RUNNER = r"""
import subprocess, sys, time
from bcc import BPF
b = BPF(text=sys.argv[1].encode())
start = time.perf_counter()
subprocess.run(sys.argv[2:], stderr=subprocess.DEVNULL, check=True)
print(time.perf_counter() - start)
"""


TRACER_KERNEL_ONLY = r"""
import os, sys, time
from tinyjail.tracer.syscalls.loader import Probe, ProbeOptions
stacks = int(sys.argv[1].rstrip("d"))
durations = sys.argv[1].endswith("d")    # "8d": stacks on, entry hooked too
probe = Probe(ProbeOptions(stack_k=stacks, durations=durations, event_pages=1 << 17))   # 512 MiB: no drain
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(w); os.read(r, 1)
    fd = os.open(os.devnull, os.O_WRONLY); os.dup2(fd, 2)
    os.execvp(sys.argv[2], sys.argv[2:])
os.close(r)
probe.arm(pid)
start = time.perf_counter()
os.write(w, b"x")
os.waitpid(pid, 0)
took = time.perf_counter() - start
lost = probe.counters()["events_lost"]
probe.close()
print(took if lost == 0 else -1.0)
"""


def probe_variants(n: int, repeat: int) -> None:
    """dd time (compile excluded) under minimal programs: what each hook style costs, and what
    tinyjail's own probe costs in the kernel when nothing consumes its ring."""
    kernel_only = {"tinyjail probe, ring not consumed, no stacks": "0",
                   "tinyjail probe, ring not consumed, stacks": "8",
                   "tinyjail probe, ring not consumed, --durations": "8d"}
    results: dict[str, list[float]] = {"plain": [], **{k: [] for k in (*PROBES, *kernel_only)}}
    for _ in range(repeat):
        results["plain"].append(timed(dd(n)))
        for name, text in PROBES.items():
            out = subprocess.run([sys.executable, "-c", PROBE_RUNNER, text, *dd(n)], capture_output=True,
                                 text=True, check=True)
            results[name].append(float(out.stdout.strip()))
        for name, k in kernel_only.items():
            out = subprocess.run([sys.executable, "-c", TRACER_KERNEL_ONLY, k, *dd(n)], capture_output=True,
                                 text=True, check=True)
            results[name].append(float(out.stdout.strip()))
    plain = statistics.median(results["plain"])
    print(f"hook styles, dd count={n:,} ({2 * n:,} syscalls), dd time only (compile excluded), "
          f"medians of {repeat}; load average {os.getloadavg()[0]:.2f}:")
    for name, vals in results.items():
        if min(vals) < 0:
            print(f"  {name:<46} ring too small for this n (events lost); use a smaller -n")
            continue
        print(f"  {name:<46} {statistics.median(vals):6.2f} s {statistics.median(vals) / plain:5.2f}x")


def dd(n: int) -> list[str]:
    return ["dd", "if=/dev/zero", "of=/dev/null", "bs=1", f"count={n}"]


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def trace_run(n: int, stacks: bool, out: Path, durations: bool = False) -> tuple[float, dict[str, object]]:
    argv = [sys.executable, "-m", "tinyjail", "trace", "--force", "-o", str(out)]
    if not stacks:
        argv.append("--no-stacks")
    if durations:
        argv.append("--durations")
    took = timed([*argv, "--", *dd(n)])
    meta = json.loads((out / "meta.json").read_text())
    return took, meta


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=5_000_000, help="dd count (bytes; 2 syscalls each)")
    ap.add_argument("--strace-n", type=int, default=50_000, help="dd count for the strace run")
    ap.add_argument("-r", "--repeat", type=int, default=3)
    ap.add_argument("--no-strace", action="store_true")
    ap.add_argument("--probes", action="store_true", help="only compare hook styles (raw vs regular...)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench_trace: needs root (eBPF)", file=sys.stderr)
        return 2
    n = args.n
    if args.probes:
        probe_variants(n, args.repeat)
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="bench-trace-"))
    samples: dict[str, list[float]] = {k: [] for k in ("plain", "floor", "floor2", "trace", "trace+st",
                                                       "trace+dur", "plain-small", "strace", "startup",
                                                       "python")}
    metas: dict[str, list[dict[str, object]]] = {"trace": [], "trace+st": [], "trace+dur": []}
    try:
        for rep in range(args.repeat):
            samples["plain"].append(timed(dd(n)))
            samples["floor"].append(timed([sys.executable, "-c", FLOOR, "exit", *dd(n)]))
            samples["floor2"].append(timed([sys.executable, "-c", FLOOR, "enter+exit", *dd(n)]))
            for key, stacks, durations in (("trace", False, False), ("trace+st", True, False),
                                           ("trace+dur", True, True)):
                t, meta = trace_run(n, stacks, tmp / key, durations)
                samples[key].append(t)
                metas[key].append(meta)
            samples["startup"].append(timed([sys.executable, "-m", "tinyjail", "trace", "--force", "-o",
                                             str(tmp / "true"), "--", "/bin/true"]))
            samples["python"].append(timed([sys.executable, "-m", "tinyjail", "--version"]))
            if not args.no_strace and shutil.which("strace"):
                samples["plain-small"].append(timed(dd(args.strace_n)))
                samples["strace"].append(timed(["strace", "-f", "-o", "/dev/null", *dd(args.strace_n)]))
            print(f"rep {rep + 1}/{args.repeat}: " + ", ".join(
                f"{k} {v[-1]:.2f}s" for k, v in samples.items() if v), file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    med = {k: statistics.median(v) for k, v in samples.items() if v}
    plain = med["plain"]
    print(f"dd bs=1 count={n:,} ({2 * n:,} syscalls), {args.repeat} interleaved runs, medians; "
          f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs")
    print(f"{'variant':<34} {'wall s':>8} {'ratio':>7} {'events/s':>12} {'events':>12} {'dropped':>8}")
    print(f"{'plain dd':<34} {plain:8.2f} {1.0:7.2f}")
    print(f"{'floor: no-op raw tp on sys_exit':<34} {med['floor']:8.2f} {med['floor'] / plain:7.2f}")
    print(f"{'floor: no-op on sys_enter+sys_exit':<34} {med['floor2']:8.2f} {med['floor2'] / plain:7.2f}")
    traced = (("trace", "tinyjail trace --no-stacks"), ("trace+st", "tinyjail trace (stacks on)"),
              ("trace+dur", "tinyjail trace --durations"))
    for key, label in traced:
        m = metas[key]
        events = statistics.median(int(x["events"]) for x in m)  # type: ignore[call-overload]
        dropped = max(int(x["dropped"]) for x in m)  # type: ignore[call-overload]
        cmd_s = statistics.median(float(x["duration_s"]) for x in m)  # type: ignore[arg-type]
        rate = events / cmd_s if cmd_s else 0.0
        ratio = med[key] / plain
        print(f"{label:<34} {med[key]:8.2f} {ratio:7.2f} {rate:12,.0f} {events:12,.0f} {dropped:8d}")
    if "strace" in med:
        small = med["plain-small"]
        # scaled to count=N: plain time plus strace's extra time per byte times N
        scaled = plain + (med["strace"] - small) * n / args.strace_n
        print(f"{'strace -f -o /dev/null (scaled)':<34} {scaled:8.2f} {scaled / plain:7.1f}   "
              f"(measured at count={args.strace_n:,}: {med['strace']:.2f} s vs plain {small:.3f} s, "
              f"scaled linearly to count={n:,})")
    print(f"fixed start-up: tinyjail trace -- /bin/true {med['startup']:.2f} s "
          f"(python -m tinyjail --version alone {med['python']:.2f} s)")
    for key, label in (("trace", "--no-stacks"), ("trace+st", "stacks on"), ("trace+dur", "--durations")):
        # where the wall time of a traced run goes, from the recorder's own clock (meta.timing_s)
        phases = {p: statistics.median(float(x["timing_s"][p]) for x in metas[key])  # type: ignore[index]
                  for p in ("startup", "command", "finish")}
        rest = med[key] - sum(phases.values())
        print(f"phases ({label}): start-up {phases['startup']:.2f} s, CMD {phases['command']:.2f} s, "
              f"finish {phases['finish']:.2f} s, Python start-up + exit {rest:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
