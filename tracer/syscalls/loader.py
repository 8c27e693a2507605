"""Compile probe.bpf.c with bcc, attach it, and read its ring buffers in bulk with numpy.

Why not bcc's ring buffer callbacks: one Python call per event tops out near 1M events/s while
`dd bs=1` makes ~4M syscalls/s. Every record here has a fixed size, so the bytes between the
consumer and producer positions of the mmapped ring are a numpy structured array: one copy per
drain, no per-event Python. Ring layout (kernel/bpf/ringbuf.c): page 0 = consumer position
(writable), page 1 = producer position, then the data area mapped twice in a row so a record
that wraps is still contiguous. Each record has an 8-byte header whose bit 31 means "reserved,
not yet submitted".
"""

from __future__ import annotations

import contextlib
import mmap
import struct
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any, TypeVar

import numpy as np
from tinyjail.tracer.syscalls import compiled
from tinyjail.tracer.syscalls.maps import Map
from tinyjail.tracer.unwind import StackCopy

from tinyjail import syscalls
from tinyjail.errors import BackendUnavailable

PATH_LEN = 256
STACK_WORDS = 512
RINGBUF_BUSY = 1 << 31
RINGBUF_DISCARD = 1 << 30
HEADER = 8
T = TypeVar("T")
CFLAGS = ["-Wno-unused-function", "-Wno-macro-redefined"]

# name -> (indices of path arguments, kind): kind 1 = NUL-terminated strings, 2 = sockaddr (ptr, len).
PATH_ARGS: dict[str, tuple[tuple[int, ...], int]] = {
    "open": ((0,), 1), "creat": ((0,), 1), "openat": ((1,), 1), "openat2": ((1,), 1),
    "execve": ((0,), 1), "execveat": ((1,), 1),
    "stat": ((0,), 1), "lstat": ((0,), 1), "newfstatat": ((1,), 1), "statx": ((1,), 1),
    "access": ((0,), 1), "faccessat": ((1,), 1), "faccessat2": ((1,), 1),
    "readlink": ((0,), 1), "readlinkat": ((1,), 1),
    "unlink": ((0,), 1), "unlinkat": ((1,), 1), "rmdir": ((0,), 1),
    "mkdir": ((0,), 1), "mkdirat": ((1,), 1), "mknod": ((0,), 1), "mknodat": ((1,), 1),
    "rename": ((0, 1), 1), "renameat": ((1, 3), 1), "renameat2": ((1, 3), 1),
    "link": ((0, 1), 1), "linkat": ((1, 3), 1), "symlink": ((0, 1), 1), "symlinkat": ((0, 2), 1),
    "chdir": ((0,), 1), "chroot": ((0,), 1), "truncate": ((0,), 1),
    "chmod": ((0,), 1), "fchmodat": ((1,), 1), "fchmodat2": ((1,), 1),
    "chown": ((0,), 1), "lchown": ((0,), 1), "fchownat": ((1,), 1),
    "utimes": ((0,), 1), "utimensat": ((1,), 1), "futimesat": ((1,), 1),
    "statfs": ((0,), 1), "mount": ((0, 1), 1), "umount2": ((0,), 1), "pivot_root": ((0, 1), 1),
    "swapon": ((0,), 1), "swapoff": ((0,), 1), "acct": ((0,), 1), "uselib": ((0,), 1),
    "getxattr": ((0,), 1), "lgetxattr": ((0,), 1), "setxattr": ((0,), 1), "lsetxattr": ((0,), 1),
    "listxattr": ((0,), 1), "llistxattr": ((0,), 1), "removexattr": ((0,), 1), "lremovexattr": ((0,), 1),
    "inotify_add_watch": ((1,), 1), "name_to_handle_at": ((1,), 1), "open_tree": ((1,), 1),
    "connect": ((1, 2), 2), "bind": ((1, 2), 2),
}

EVENT_DTYPE = np.dtype([
    ("ts", "<u8"), ("duration", "<i8"), ("pid", "<u4"), ("tid", "<u4"), ("nr", "<i4"), ("stack_id", "<i4"),
    ("args", "<u8", (6,)), ("ret", "<i8"), ("ip", "<u8"), ("comm", "S16"),
])
BATCH = 32
"""Events per ring record: each CPU gathers this many before one ring output (a power of two)."""
BATCH_DTYPE = np.dtype([("n", "<u4"), ("pad", "<u4"), ("ev", EVENT_DTYPE, (BATCH,))])
PATH_DTYPE = np.dtype([
    ("ts", "<u8"), ("tid", "<u4"), ("nr", "<i4"), ("kind", "<u4"), ("len0", "<u4"),
    ("p0", f"S{PATH_LEN}"), ("p1", f"S{PATH_LEN}"),
])
PROC_DTYPE = np.dtype([
    ("ts", "<u8"), ("kind", "<u4"), ("pid", "<u4"), ("tid", "<u4"), ("ppid", "<i4"), ("aux", "<i4"),
    ("pad", "<u4"), ("ip", "<u8"), ("sp", "<u8"), ("comm", "S16"), ("filename", f"S{PATH_LEN}"),
    ("stack", "<u8", (STACK_WORDS,)),
])
PROC_FORK, PROC_EXEC, PROC_EXIT, PROC_START = 1, 2, 3, 4
COUNTERS = ("events_lost", "paths_lost", "procs_lost", "stack_errors", "starts_full", "stacks_taken")
STATE_TRACKED, STATE_ARMED = 1, 2


@dataclass(frozen=True)
class ProbeOptions:
    """What to compile in. Ring sizes are in pages (a power of two)."""

    stack_k: int = 8              # stacks per (syscall, user ip); 0 turns stacks off
    paths: bool = True
    durations: bool = False       # also hook sys_enter for entry times (one more program + clock read)
    event_pages: int = 1 << 16    # 256 MiB: ~2.2M events, about a second of dd bs=1 at full speed
    path_pages: int = 1 << 12     # 16 MiB
    proc_pages: int = 1 << 13     # 32 MiB: ~7000 exec/fork/exit records in flight
    sites: int = 1 << 16
    stacks: int = 1 << 14


def _nr(name: str) -> int:
    nr = syscalls.number(name)
    if nr is None:  # pragma: no cover - every name used here exists on x86_64
        raise BackendUnavailable(f"libseccomp does not know the x86_64 syscall {name!r}")
    return nr


def path_cases() -> str:
    """C `case` lines for tj_path_args(), numbers from libseccomp's table."""
    lines = []
    for name, (idx, kind) in sorted(PATH_ARGS.items(), key=lambda kv: _nr_or_none(kv[0]) or 0):
        nr = syscalls.number(name)
        if nr is None:
            continue
        second = idx[1] if len(idx) > 1 else -1
        lines.append(f"    case {nr}: *a = {idx[0]}; *b = {second}; return {kind};  /* {name} */")
    return "\n".join(lines)


def _nr_or_none(name: str) -> int | None:
    return syscalls.number(name)


def program_text(opts: ProbeOptions) -> str:
    """probe.bpf.c with its TJ_* parameters filled in."""
    src = resources.files("tinyjail.tracer.syscalls").joinpath("probe.bpf.c").read_text()
    defines = {
        "TJ_PATH_LEN": PATH_LEN,
        "TJ_BATCH": BATCH,
        "TJ_PID_MAX": pid_max(),
        "TJ_STACK_WORDS": STACK_WORDS,
        "TJ_STACK_K": opts.stack_k,
        "TJ_PATHS": int(opts.paths),
        "TJ_DURATIONS": int(opts.durations),
        "TJ_SITES": opts.sites,
        "TJ_SITES_BITS": opts.sites.bit_length() - 1,
        "TJ_STACKS": opts.stacks,
        "TJ_EVENT_PAGES": opts.event_pages,
        "TJ_PATH_PAGES": opts.path_pages,
        "TJ_PROC_PAGES": opts.proc_pages,
        "TJ_NR_EXECVE": _nr("execve"),
        "TJ_NR_EXECVEAT": _nr("execveat"),
        "TJ_NR_EXIT": _nr("exit"),
        "TJ_NR_EXIT_GROUP": _nr("exit_group"),
        "TJ_NR_RT_SIGRETURN": _nr("rt_sigreturn"),
    }
    sched = sched_offsets()
    defines["TJ_RAW_SCHED"] = int(sched is not None)
    defines.update(sched or {})
    head = "".join(f"#define {k} {v}\n" for k, v in defines.items())
    return head + src.replace("TJ_PATH_CASES", path_cases())


SCHED_FIELDS = {
    "TJ_OFF_TASK_PID": ("task_struct", "pid"),
    "TJ_OFF_TASK_COMM": ("task_struct", "comm"),
    "TJ_OFF_BPRM_FILENAME": ("linux_binprm", "filename"),
}


def sched_offsets() -> dict[str, int] | None:
    """Offsets the raw sched hooks read, from the kernel's BTF; None: use perf tracepoints."""
    from tinyjail.tracer.syscalls.btf import offsets

    return offsets(SCHED_FIELDS)


def pid_max() -> int:
    """The kernel's pid_max: pids and tids index the membership arrays directly."""
    try:
        return int(open("/proc/sys/kernel/pid_max").read())
    except (OSError, ValueError):
        return 1 << 22


def check_environment() -> None:
    """Raise BackendUnavailable naming the first missing prerequisite and how to fix it."""
    from tinyjail.tracer.syscalls.environment import missing_prerequisite

    why = missing_prerequisite()
    if why:
        raise BackendUnavailable(why)


class RingReader:
    """Bulk consumer of one BPF_RINGBUF_OUTPUT map whose records all have ``dtype``."""

    def __init__(self, map_fd: int, data_size: int, dtype: np.dtype[Any]) -> None:
        page = mmap.PAGESIZE
        self.size = data_size
        self.mask = data_size - 1
        self.stride = (HEADER + dtype.itemsize + 7) & ~7
        self.framed = np.dtype({
            "names": ["hdr", "rec"], "formats": ["<u4", dtype], "offsets": [0, HEADER],
            "itemsize": self.stride,
        })
        self._cons_map = mmap.mmap(map_fd, page, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=0)
        self._data_map = mmap.mmap(map_fd, page + 2 * data_size, mmap.MAP_SHARED, mmap.PROT_READ, offset=page)
        self._cons = np.frombuffer(self._cons_map, dtype="<u8", count=1)
        self._prod = np.frombuffer(self._data_map, dtype="<u8", count=1)
        self._data = np.frombuffer(self._data_map, dtype=np.uint8, offset=page)

    def producer(self) -> int:
        return int(self._prod[0])

    def pending(self) -> int:
        return (int(self._prod[0]) - int(self._cons[0])) // self.stride

    def drain(self, limit: int | None = None, max_records: int = 1 << 20) -> np.ndarray[Any, Any]:
        """Copy out every submitted record up to ``limit`` (a producer position) and release them."""
        return self.drain_with(lambda view: view.copy(), limit, max_records)

    def drain_with(self, take: Callable[[np.ndarray[Any, Any]], T], limit: int | None = None,
                   max_records: int = 1 << 20) -> T:
        """Apply ``take`` to a view of the submitted records (up to ``limit``), then release them.
        ``take`` must copy what it keeps: the space is reused by the kernel afterwards."""
        cons = int(self._cons[0])
        prod = int(self._prod[0]) if limit is None else limit
        n = max(0, min((prod - cons) // self.stride, max_records))
        start = cons & self.mask
        framed = self._data[start:start + n * self.stride].view(self.framed)
        hdr = framed["hdr"]
        busy = np.flatnonzero(hdr & RINGBUF_BUSY)
        if busy.size:
            n = int(busy[0])
            framed = framed[:n]
            hdr = hdr[:n]
        view = framed["rec"]
        if n and np.any(hdr & RINGBUF_DISCARD):
            view = view[(hdr & RINGBUF_DISCARD) == 0]
        out = take(view)
        self._cons[0] = cons + n * self.stride
        return out

    def close(self) -> None:
        del self._cons, self._prod, self._data
        self._cons_map.close()
        self._data_map.close()


class Probe:
    """The compiled, attached program and its maps. Use as a context manager (detaches on exit)."""

    def __init__(self, opts: ProbeOptions | None = None) -> None:
        check_environment()
        self.opts = opts or ProbeOptions()
        try:
            import bcc  # noqa: F401  (libbcc: the loader and map functions of both paths)
        except Exception as err:  # bcc missing or broken
            raise BackendUnavailable(f"bcc is not importable ({err}); run 'make setup'") from None
        text = program_text(self.opts)
        self.bpf: Any = None
        self._loaded: compiled.LoadedProgram | None = None
        self.cache = "off"
        """hit: loaded from the cache; miss: compiled by bcc and stored; off: compiled, not stored."""
        key = compiled.cache_key(text, CFLAGS)
        prog = compiled.read_cached(key)
        if prog is not None:
            try:
                self._loaded = compiled.LoadedProgram(prog)
                fds, specs = self._loaded.map_fds, prog.maps
                self.cache = "hit"
            except (OSError, ValueError):
                prog = None     # refused by this kernel after all: bcc compiles it again below
        if prog is None:
            fds, specs = self._compile(text, key)
        self.maps = {s.name: Map(fds[s.name], s) for s in specs}
        page = mmap.PAGESIZE
        self.events = RingReader(fds["events"], self.opts.event_pages * page,
                                 np.dtype((EVENT_DTYPE, (BATCH,))))
        self.paths = RingReader(fds["paths"], self.opts.path_pages * page, PATH_DTYPE)
        self.procs = RingReader(fds["procs"], self.opts.proc_pages * page, PROC_DTYPE)

    def _compile(self, text: str, key: str) -> tuple[dict[str, int], tuple[compiled.MapSpec, ...]]:
        """bcc's compile, load and attach; the result is kept for the next run when it can be."""
        from bcc import BPF

        try:
            self.bpf = BPF(text=text.encode(), cflags=CFLAGS)
        except Exception as err:
            raise BackendUnavailable(
                f"cannot compile or load the eBPF program ({str(err).strip().splitlines()[-1]}); "
                "check kernel headers and tracefs with 'make setup'"
            ) from None
        specs, fds = compiled.map_specs(self.bpf)
        prog = compiled.capture(self.bpf)
        if prog is not None and compiled.write_cached(key, prog):
            self.cache = "miss"
        return fds, specs

    def __enter__(self) -> Probe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def arm(self, pid: int) -> None:
        """Follow ``pid`` from its next execve on (and every task it then creates)."""
        self.maps["tracked"].set(pid.to_bytes(4, "little"), bytes([STATE_ARMED]))
        self.maps["live"].set(bytes(4), (1).to_bytes(8, "little"))

    def live_tasks(self) -> int:
        """Tasks of the tree still alive (the kernel counts forks and exits)."""
        raw = self.maps["live"].get(bytes(4))
        return max(0, int.from_bytes(raw, "little", signed=True)) if raw else 0

    def counters(self) -> dict[str, int]:
        table = self.maps["counters"]
        out = {}
        for i, name in enumerate(COUNTERS):
            out[name] = sum(int.from_bytes(v, "little") for v in table.per_cpu(i.to_bytes(4, "little")))
        return out

    def callers(self) -> dict[int, StackCopy]:
        """stack id -> the top of the user stack (and rbp) copied when that stack was first taken
        (tracer/unwind.py unwinds the first frames from it). Only the ids the stack map holds are
        read: two lookups per stack, not the whole 16k-entry array."""
        table = self.maps["callers"]
        header = struct.Struct("<QQII")       # struct tj_window: sp, bp, len, pad, then the bytes
        window = table.spec.value_size - header.size
        out = {}
        for k in self.maps["stacks"]:
            raw = table.get(k)
            if raw is None:
                continue
            sp, bp, n, _ = header.unpack_from(raw)
            if sp:
                data = raw[header.size:header.size + min(n, window)]
                out[int.from_bytes(k, "little", signed=True)] = StackCopy(sp, bp, data)
        return out

    def stack(self, stack_id: int) -> list[int]:
        """The user instruction pointers of one stack, innermost first."""
        raw = self.maps["stacks"].get(stack_id.to_bytes(4, "little"))
        if raw is None:
            return []
        ips = np.frombuffer(raw, dtype="<u8")
        end = np.flatnonzero(ips == 0)
        return [int(a) for a in ips[:end[0] if len(end) else len(ips)]]

    def detach(self) -> None:
        """Stop recording: detach the raw tracepoints (the syscall hooks and, with BTF, the sched
        hooks; a few ms). Maps and rings stay readable; perf tracepoints go in ``close``."""
        if self._loaded is not None:
            self._loaded.detach()
        else:
            for tp in list(self.bpf.raw_tracepoint_fds):
                self.bpf.detach_raw_tracepoint(tp)

    def missed_runs(self) -> int:
        """Runs of the probe's programs the kernel skipped (a program already running on that
        CPU). The syscall hooks run with preemption off on current kernels, so this stays 0; if
        not, the skipped runs may have been the traced command's syscalls."""
        return sum(compiled.prog_info(fd, "recursion_misses") or 0 for fd in self.prog_fds())

    def prog_fds(self) -> list[int]:
        """The attached programs' fds."""
        return self._loaded.prog_fds if self._loaded is not None else [f.fd for f in self.bpf.funcs.values()]

    def leftovers(self) -> np.ndarray[Any, Any]:
        """The events still in the per-CPU batches (fewer than BATCH per CPU), in CPU order.
        Read them after ``detach`` (or once no tracked task runs): a program may be filling them."""
        batches = self.maps["batches"]
        parts = [np.frombuffer(raw, dtype=BATCH_DTYPE, count=1)[0]
                 for raw in batches.per_cpu(bytes(4))]
        return np.concatenate([p["ev"][:min(int(p["n"]), BATCH)] for p in parts]) if parts else \
            np.empty(0, EVENT_DTYPE)

    def close(self) -> None:
        for ring in (self.events, self.paths, self.procs):
            ring.close()
        if self._loaded is not None:
            self._loaded.close()    # raw tracepoints: detached at once
            return
        # Closing a perf tracepoint waits for RCU grace periods (~70 ms each, one after the other
        # in bcc's cleanup). Closed from parallel threads (ctypes drops the GIL) they share them.
        import threading

        closers = [threading.Thread(target=self._detach_quietly, args=(tp,))
                   for tp in list(self.bpf.tracepoint_fds)]
        for t in closers:
            t.start()
        for t in closers:
            t.join()
        self.bpf.cleanup()

    def _detach_quietly(self, tp: bytes) -> None:
        with contextlib.suppress(Exception):   # cleanup() retries whatever is still attached
            self.bpf.detach_tracepoint(tp)
