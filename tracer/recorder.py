"""Record every syscall of one command's process tree into a trace directory.

The launcher forks; the child waits on a pipe until the probe has its pid ARMED, then (after
loading a complain/enforce filter when a policy is given) execs CMD. The probe records from
that execve on, and follows every fork, thread and exec of the tree in the kernel, so even a
child living 1 ms is complete. Three threads share the work: the main one waits for CMD
(forwarding signals, drawing the progress line), a drain thread copies ring buffers out in
bulk, a writer thread turns each chunk into an Arrow batch appended to events.parquet, so the
trace is mostly written by the time CMD exits. See notes/tracer.md.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import platform
import queue
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tinyjail.enforce.launch import FORWARDED, SI_KERNEL, read_status
from tinyjail.enforce.launch import exit_status as wait_exit_status

from tinyjail import __version__, syscalls
from tinyjail.errors import EnforceError, TraceError, UsageError
from tinyjail.timeline import (
    EVENT_COLUMNS,
    PROCESS_COLUMNS,
    SECCOMP_COLUMNS,
    STACK_COLUMNS,
    Trace,
    empty_frame,
)

if TYPE_CHECKING:
    import pyarrow as pa
    from tinyjail.tracer.syscalls.loader import Probe
    from tinyjail.tracer.unwind import StackCopy

    from tinyjail.policy import Policy

MAX_NR = 1024
LINGER_S = 3.0
"""How long to keep recording descendants that outlive CMD (daemons) before giving up on them."""
DRAIN_MIN = 1 << 14
DRAIN_SLEEP_S = 0.003
BATCH_EVENTS = 1 << 18
NULLABLE_EVENT_COLUMNS = ("errno", "path")
"""Events per Parquet row group written while CMD runs."""

_MAP_TRACKING = ("open", "openat", "openat2", "creat", "close", "mmap", "dup", "dup2", "dup3")


@dataclass
class Progress:
    """What the progress line shows; updated by the drain thread."""

    events: int = 0
    started: float = field(default_factory=time.monotonic)
    dropped: int = 0
    last_events: int = 0
    last_time: float = field(default_factory=time.monotonic)


@dataclass
class RecordResult:
    """What `record_to` returns: where the trace is and the numbers for a summary."""

    path: Path
    exit_status: int
    events: int
    dropped: int
    unique_syscalls: int
    seconds: float
    meta: dict[str, Any]
    seccomp_records: int = 0
    messages: list[str] = field(default_factory=list)


def _names_table() -> np.ndarray[Any, Any]:
    return np.array([syscalls.name(nr) for nr in range(MAX_NR)] + [""], dtype=object)


def decode_sockaddr(raw: bytes, length: int) -> str:
    """A captured sockaddr as text: ``unix:/run/x.sock``, ``127.0.0.1:80``, ``[::1]:443``."""
    import socket

    raw = raw[:length] if length else raw
    if len(raw) < 2:
        return ""
    family = int.from_bytes(raw[:2], "little")
    if family == socket.AF_UNIX:
        body = raw[2:]
        if body[:1] == b"\0":
            return "unix:@" + body[1:].split(b"\0")[0].decode(errors="replace")
        return "unix:" + body.split(b"\0")[0].decode(errors="replace")
    if family == socket.AF_INET and len(raw) >= 8:
        return f"{socket.inet_ntop(socket.AF_INET, raw[4:8])}:{int.from_bytes(raw[2:4], 'big')}"
    if family == socket.AF_INET6 and len(raw) >= 24:
        return f"[{socket.inet_ntop(socket.AF_INET6, raw[8:24])}]:{int.from_bytes(raw[2:4], 'big')}"
    return f"family={family}"


def _cstr(b: bytes) -> str:
    return b.split(b"\0", 1)[0].decode(errors="replace")


class EventWriter:
    """Turns drained event records into Arrow batches and appends them to events.parquet.

    Also keeps the little the symbolizer needs (opens, mmaps, closes; the first pid of each
    stack id) and per-syscall counts for the summary.
    """

    def __init__(self, path: Path, paths: dict[tuple[int, int], str]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.pa = pa
        self.paths = paths
        self.names = _names_table()
        self.path_nrs = np.array(sorted(_path_nrs()), dtype=np.int32)
        tracked = (syscalls.number(x) for x in _MAP_TRACKING)
        self.map_nrs = np.array(sorted(n for n in tracked if n is not None), dtype=np.int32)
        # Columns that are never null are REQUIRED in Parquet: no definition levels to encode
        # (~25 ns less per event, a third of the encoding time); only errno and path have nulls.
        self.schema = pa.schema([
            pa.field(name, _arrow_type(pa, dtype), nullable=name in NULLABLE_EVENT_COLUMNS)
            for name, dtype in EVENT_COLUMNS.items()
        ])
        self.writer = pq.ParquetWriter(
            # snappy: 10M dd events -> 107 MB in 0.95 s (lz4 80 MB/1.4 s, zstd 46 MB/2.0 s, none 968 MB)
            path, self.schema, compression="snappy", use_dictionary=["comm", "name", "errno", "path"],
            write_statistics=["ts", "pid", "tid", "nr"],
            # times: delta coding is ~2x cheaper than plain+snappy on them and 5x smaller
            column_encoding={"ts": "DELTA_BINARY_PACKED", "duration_ns": "DELTA_BINARY_PACKED"},
        )
        self.counts = np.zeros(MAX_NR + 1, dtype=np.int64)
        self.events = 0
        self.keep: list[dict[str, Any]] = []
        self.stack_pid: dict[int, int] = {}
        self.stack_count: dict[int, int] = {}
        self.tgid: dict[int, int] = {}
        self.exit_args: dict[int, int] = {}
        self.queue: queue.Queue[Columns | None] = queue.Queue()
        self.free: queue.Queue[Columns] = queue.Queue()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="tinyjail-trace-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            chunk = self.queue.get()
            if chunk is None:
                return
            try:
                if len(chunk["ts"]):
                    self._write(chunk)
            except BaseException as err:  # reported by close()
                self.error = err
            if len(chunk["ts"]) == BATCH_EVENTS:
                self.free.put(chunk)    # pyarrow is done with it: the drain thread refills it

    def _write(self, rec: Columns) -> None:
        pa = self.pa
        n = len(rec["ts"])
        nr = rec["nr"]
        idx = np.where((nr >= 0) & (nr < MAX_NR), nr, MAX_NR).astype(np.int64)
        counts = np.bincount(idx, minlength=MAX_NR + 1)
        self.counts += counts
        self.events += n
        present = np.flatnonzero(counts)
        names = [str(self.names[i]) for i in present]
        if counts[MAX_NR]:
            # numbers beyond the table: name them one by one (rare)
            odd = np.unique(nr[idx == MAX_NR])
            names = names[:-1] + [syscalls.name(int(x)) for x in odd]
            lut = np.full(MAX_NR + 1, -1, dtype=np.int32)
            lut[present[:-1]] = np.arange(len(present) - 1, dtype=np.int32)
            codes = lut[idx]
            codes[idx == MAX_NR] = len(present) - 1 + np.searchsorted(odd, nr[idx == MAX_NR])
        else:
            lut = np.full(MAX_NR + 1, -1, dtype=np.int32)
            lut[present] = np.arange(len(present), dtype=np.int32)
            codes = lut[idx]
        name_col = pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), pa.array(names, pa.string()))

        ret = rec["ret"]
        is_err = (ret < 0) & (ret >= -4095)
        if is_err.any():
            eno = np.where(is_err, -ret, 0)
            used = np.unique(eno[is_err])
            elut = np.full(4096, -1, dtype=np.int32)
            elut[used] = np.arange(len(used), dtype=np.int32)
            ecodes = pa.array(elut[eno], pa.int32(), mask=~is_err)
            errno_col = pa.DictionaryArray.from_arrays(
                ecodes, pa.array([errno.errorcode.get(int(e), f"E{int(e)}") for e in used], pa.string())
            )
        else:
            errno_col = pa.DictionaryArray.from_arrays(pa.nulls(n, pa.int32()), pa.array([], pa.string()))

        comm = rec["comm"]
        words = comm.view("<u8").reshape(n, 2)
        if (words == words[0]).all():
            comm_col = pa.DictionaryArray.from_arrays(
                pa.array(np.zeros(n, np.int32)), pa.array([_cstr(bytes(comm[0]))])
            )
        else:
            key = words[:, 0] ^ (words[:, 1] * np.uint64(0x9E3779B97F4A7C15))
            _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
            comm_col = pa.DictionaryArray.from_arrays(
                pa.array(inverse.astype(np.int32)), pa.array([_cstr(bytes(comm[i])) for i in first])
            )

        pid = rec["pid"].view(np.int32)
        tid = rec["tid"].view(np.int32)
        ts = rec["ts"].view(np.int64)
        if (tid == tid[0]).all():
            self.tgid[int(tid[0])] = int(pid[0])
        else:
            u, first = np.unique(tid, return_index=True)
            self.tgid.update(zip(u.tolist(), pid[first].tolist(), strict=True))

        path_rows = np.flatnonzero(np.isin(nr, self.path_nrs))
        if len(path_rows):
            values: list[str | None] = [None] * n
            tids, tss = tid[path_rows].tolist(), ts[path_rows].tolist()
            for row, t, s in zip(path_rows.tolist(), tids, tss, strict=True):
                values[row] = self.paths.pop((t, s), None)
            path_col = pa.array(values, pa.string())
        else:
            path_col = pa.nulls(n, pa.string())

        args = rec["args"]    # (6, n): one contiguous row per argument
        stack_id = rec["stack_id"]
        has_stack = np.flatnonzero(stack_id >= 0)
        if len(has_stack):
            sids, first, cnt = np.unique(stack_id[has_stack], return_index=True, return_counts=True)
            for s, f, c in zip(sids.tolist(), first.tolist(), cnt.tolist(), strict=True):
                self.stack_pid.setdefault(s, int(pid[has_stack[f]]))
                self.stack_count[s] = self.stack_count.get(s, 0) + c
        keep = np.flatnonzero(np.isin(nr, self.map_nrs))
        exit_group = syscalls.number("exit_group")
        ends = np.flatnonzero(nr == exit_group)
        for row in ends.tolist():
            self.exit_args[int(pid[row])] = int(args[0, row])
        if len(keep):
            self.keep.append({
                "ts": ts[keep], "pid": pid[keep], "nr": nr[keep], "args": args[:, keep].T, "ret": ret[keep],
                "path": [path_col[int(i)].as_py() for i in keep] if len(path_rows) else [None] * len(keep),
            })

        batch = pa.RecordBatch.from_arrays([
            pa.array(ts), pa.array(pid), pa.array(tid), comm_col, pa.array(nr), name_col,
            *(pa.array(args[i]) for i in range(6)),
            pa.array(ret), errno_col, pa.array(rec["duration"]), pa.array(stack_id),
            pa.array(rec["ip"]), path_col,
        ], schema=self.schema)
        self.writer.write_batch(batch)

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join()
        self.writer.close()
        if self.error is not None:
            raise TraceError(f"cannot write events.parquet ({self.error})")


Columns = dict[str, "np.ndarray[Any, Any]"]
"""One contiguous array per record field (``args`` is (6, n))."""

SPLIT_ROWS = 8192
"""Rows gathered per pass when splitting records into columns (~1 MiB: stays in cache)."""


def new_columns(n: int) -> Columns:
    """Empty columns for ``n`` event records (``args`` as a (6, n) array)."""
    from tinyjail.tracer.syscalls.loader import EVENT_DTYPE

    out: Columns = {}
    for name in EVENT_DTYPE.names or ():
        base, shape = EVENT_DTYPE[name].base, EVENT_DTYPE[name].shape
        out[name] = np.empty((shape[0], n) if shape else n, dtype=base)
    return out


def split_into(records: np.ndarray[Any, Any], out: Columns, at: int) -> int:
    """Copy records into rows ``at``.. of ``out``, one contiguous array per field; returns how many.

    ``records`` is 1-D, or 2-D (ring records of several events each): rows are taken in order.

    pyarrow copies a strided numpy view element by element (~35 ns each) and a whole-array
    gather per field streams the records from memory once per field; gathering all fields
    from cache-sized slices costs a few ns per value and hands pyarrow buffers it wraps.
    Filling a preallocated 256k-row buffer (recycled by the writer) avoids concatenating
    drains and page-faulting fresh memory for every chunk.
    """
    grid = records if records.ndim == 2 else records[:, None]
    per = grid.shape[1]
    step = max(1, SPLIT_ROWS // per)
    for start in range(0, len(grid), step):
        part = grid[start:start + step]
        lo = at + start * per
        rows = part.shape[0]
        hi = lo + rows * per
        for name, col in out.items():
            if col.ndim == 2:     # (6, n): the target rows viewed as (6, rows, per), no temporary
                col[:, lo:hi].reshape(col.shape[0], rows, per)[...] = np.moveaxis(part[name], -1, 0)
            else:
                col[lo:hi].reshape(rows, per)[...] = part[name]
    return len(grid) * per


def split_columns(records: np.ndarray[Any, Any]) -> Columns:
    """Record array -> one contiguous array per field (``args`` as a (6, n) array)."""
    out = new_columns(records.size)
    split_into(records, out, 0)
    return out


def _arrow_type(pa: Any, dtype: str) -> pa.DataType:
    if dtype == "category":
        return pa.dictionary(pa.int32(), pa.string())
    if dtype == "string":
        return pa.string()
    return pa.from_numpy_dtype(np.dtype(dtype))


def _path_nrs() -> set[int]:
    from tinyjail.tracer.syscalls.loader import PATH_ARGS

    return {nr for nr in (syscalls.number(n) for n in PATH_ARGS) if nr is not None}


class Drainer:
    """Copies the three rings out every few ms; paths first, so an event's path is always there."""

    def __init__(self, probe: Probe, writer: EventWriter, paths: dict[tuple[int, int], str],
                 progress: Progress, on_proc: Callable[[np.ndarray[Any, Any]], None]) -> None:
        self.probe = probe
        self.writer = writer
        self.paths = paths
        self.progress = progress
        self.on_proc = on_proc
        self.procs: list[np.ndarray[Any, Any]] = []
        from tinyjail.tracer.syscalls.loader import BATCH

        self.per_record = BATCH
        self.buf = new_columns(BATCH_EVENTS)
        self.fill = 0
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="tinyjail-trace-drain", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        try:
            while True:
                stopping = self.stop.is_set()
                got = self.once()
                if stopping and not got:
                    self.take_leftovers()
                    self.flush()
                    return
                if got < DRAIN_MIN:
                    # each drain has a fixed cost (~40 us): let a few thousand events gather
                    # (the ring holds ~2M, half a second at dd's full rate)
                    time.sleep(DRAIN_SLEEP_S)
        except BaseException as err:  # reported by finish()
            self.error = err

    def once(self) -> int:
        probe = self.probe
        limit = probe.events.producer()
        procs = probe.procs.drain()
        if len(procs):
            self.procs.append(procs)
            self.on_proc(procs)
        paths = probe.paths.drain()
        for p in paths:
            if int(p["kind"]) == 2:
                text = decode_sockaddr(bytes(p["p0"]), int(p["len0"]))
            else:
                text = _cstr(bytes(p["p0"]))
                second = _cstr(bytes(p["p1"]))
                if second:
                    text = f"{text} -> {second}"
            self.paths[(int(p["tid"]), int(p["ts"]))] = text
        # split into columns straight from the ring (one cache-friendly pass, no record copy),
        # into the free rows of the current 256k-row buffer; a full buffer is one row group
        n = probe.events.drain_with(lambda recs: split_into(recs, self.buf, self.fill), limit,
                                    max_records=(BATCH_EVENTS - self.fill) // self.per_record)
        if n:
            self.fill += n
            self.progress.events += n
            if self.fill == BATCH_EVENTS:
                self.flush()
        return n + len(procs) + len(paths)

    def take_leftovers(self) -> None:
        """The events still gathered per CPU in the kernel (the probe is detached by now)."""
        rest = self.probe.leftovers()
        if not len(rest):
            return
        if self.fill + len(rest) > BATCH_EVENTS:
            self.flush()
        self.fill += split_into(rest, self.buf, self.fill)
        self.progress.events += len(rest)

    def flush(self) -> None:
        """Hand the filled rows to the writer and start a recycled (or new) buffer."""
        if not self.fill:
            return
        if self.fill == BATCH_EVENTS:
            self.writer.queue.put(self.buf)
        else:
            self.writer.queue.put({k: v[..., :self.fill] for k, v in self.buf.items()})
        try:
            self.buf = self.writer.free.get_nowait()
        except queue.Empty:
            self.buf = new_columns(BATCH_EVENTS)
        self.fill = 0

    def finish(self) -> None:
        self.stop.set()
        self.thread.join()
        if self.error is not None:
            raise TraceError(f"reading the ring buffers failed ({self.error})")


def _resolve(argv: Sequence[str]) -> str:
    from tinyjail.enforce.launch import resolve_command

    return resolve_command(argv, usage="tinyjail trace -o TRACE -- CMD [ARGS]")


def _check_output(output: Path, force: bool) -> None:
    if output.exists() and (not output.is_dir() or any(output.iterdir())) and not force:
        raise TraceError(f"{output}: already exists and is not empty; choose another -o or pass --force")


def _progress_line(progress: Progress) -> str:
    """``tracing: 1,234,567 calls, 2,345,678 calls/s, dropped 0`` (rate over the last refresh).

    It counts recorded calls (events), not distinct syscalls: "calls" says so. A distinct count
    would need the writer's per-number table, which the drain thread does not keep."""
    now = time.monotonic()
    span = max(now - progress.last_time, 1e-6)
    rate = (progress.events - progress.last_events) / span
    progress.last_time, progress.last_events = now, progress.events
    return f"tracing: {progress.events:,} calls, {rate:,.0f} calls/s, dropped {progress.dropped:,}"


def record_to(
    argv: Sequence[str],
    output: str | os.PathLike[str],
    *,
    stacks: bool = True,
    policy: Policy | None = None,
    mode: str | None = None,
    progress: bool = False,
    force: bool = False,
    stack_k: int = 8,
    linger: float = LINGER_S,
    env: dict[str, str] | None = None,
    ring_pages: int | None = None,
    durations: bool = False,
) -> RecordResult:
    """Run ``argv`` under the probe and write its trace to ``output``; returns the summary.

    By default each syscall is recorded at its exit only (``ts`` = exit time, ``duration_ns``
    = -1: not measured), which halves the in-kernel cost per syscall; ``durations=True`` also
    hooks the entry, so ``ts`` is the entry time and ``duration_ns`` exit - entry.

    Raises BackendUnavailable (no root/eBPF), UsageError/CommandNotFound (bad CMD), TraceError
    (``output`` exists without ``force``), EnforceError (the policy's filter could not load).
    """
    # Blocked before any helper thread exists, so none of them can take a signal meant for the
    # wait loop (a Ctrl-C would otherwise become a KeyboardInterrupt mid-recording).
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {*FORWARDED, signal.SIGCHLD})
    try:
        return _record(argv, output, stacks=stacks, policy=policy, mode=mode, progress=progress,
                       force=force, stack_k=stack_k, linger=linger, env=env, ring_pages=ring_pages,
                       durations=durations, old_mask=old_mask)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)


def _record(
    argv: Sequence[str],
    output: str | os.PathLike[str],
    *,
    stacks: bool,
    policy: Policy | None,
    mode: str | None,
    progress: bool,
    force: bool,
    stack_k: int,
    linger: float,
    env: dict[str, str] | None,
    ring_pages: int | None,
    durations: bool,
    old_mask: Any,
) -> RecordResult:
    from tinyjail.enforce.launch import Execve, exec_child
    from tinyjail.tracer.syscalls.loader import (
        PROC_EXEC,
        PROC_FORK,
        PROC_START,
        Probe,
        ProbeOptions,
        check_environment,
        sched_offsets,
    )

    t_begin = time.monotonic()
    check_environment()   # privilege first: one line saying what is missing, nothing touched
    out = Path(output)
    _check_output(out, force)
    path = _resolve(argv)
    if mode is not None and policy is None:
        raise UsageError("--mode needs --policy P (the policy to run the command under)")
    filt = None
    if policy is not None:
        from tinyjail.enforce import build_filter

        filt = build_filter(policy, mode or "complain")
    execve = Execve(path, argv, env)

    opts = ProbeOptions(stack_k=stack_k if stacks else 0, durations=durations)
    if ring_pages is not None:
        if ring_pages < 1 or ring_pages & (ring_pages - 1):
            raise UsageError(f"ring size must be a power of two pages, not {ring_pages}")
        opts = dataclasses.replace(opts, event_pages=ring_pages)
    created = not out.exists()
    # The kernel's BTF (/sys/kernel/btf/vmlinux, ~5 MB) comes 4 KiB per read(): read before the
    # import thread holds the GIL, or each of those ~1,300 reads waits for it (6 ms -> 0.2 s).
    sched_offsets()
    warm = threading.Thread(target=_warm_imports, name="tinyjail-trace-imports", daemon=True)
    warm.start()          # overlaps map creation and verification, or bcc's compile: no GIL held
    probe = Probe(opts)
    reader: Any = None
    messages: list[str] = []
    prog = Progress()
    tmp_events = None
    try:
        if policy is not None:
            from tinyjail.audit import SeccompAuditReader

            reader = SeccompAuditReader()
            reader.start()
        out.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".events-", suffix=".parquet", dir=out)
        os.close(fd)
        tmp_events = Path(tmp_name)
        umask = os.umask(0)
        os.umask(umask)
        tmp_events.chmod(0o666 & ~umask)   # like the other tables, not mkstemp's 0600
        paths: dict[tuple[int, int], str] = {}
        writer = EventWriter(tmp_events, paths)
        from tinyjail.tracer.symbolize import snapshot_maps

        live_maps: dict[int, Any] = {}

        def on_proc(recs: np.ndarray[Any, Any]) -> None:
            for kind, pid in zip(recs["kind"].tolist(), recs["pid"].tolist(), strict=True):
                if kind in (PROC_START, PROC_FORK, PROC_EXEC):
                    snap = snapshot_maps(pid)
                    if snap:
                        live_maps[pid] = snap

        drainer = Drainer(probe, writer, paths, prog, on_proc)
        cwd = os.getcwd()
        start_wall = time.time()
        go_r, go_w = os.pipe()
        status_r, status_w = os.pipe2(os.O_CLOEXEC)
        try:
            pid = os.fork()
            if pid == 0:  # pragma: no cover - the child execs or exits
                os.close(go_w)
                exec_child(filt, execve, status_w, old_mask, go_r=go_r)
            os.close(go_r)
            os.close(status_w)
            probe.arm(pid)
            drainer.start()
            started = time.monotonic()
            prog.started = started
            os.write(go_w, b"g")
            os.close(go_w)
            wait_status = _wait(pid, prog, progress and sys.stderr.isatty(), probe)
            failure = read_status(status_r)
            deadline = time.monotonic() + linger
            while probe.live_tasks() and time.monotonic() < deadline:
                time.sleep(0.01)
            survivors = probe.live_tasks()
            seconds = time.monotonic() - started
            t_cmd_end = time.monotonic()
        finally:
            os.close(status_r)
        probe.detach()
        if survivors:
            time.sleep(0.01)   # a detached program may still be finishing a run on another CPU
        drainer.finish()
        writer.close()
        if failure.startswith(b"L"):
            src = getattr(policy, "source", None) or "<policy>"
            raise EnforceError(f"{src}: the kernel refused to load the filter; {argv[0]} was not run")
        counters = probe.counters()
        counters["missed_runs"] = probe.missed_runs()
        callers = probe.callers()
        stack_ips = {sid: probe.stack(sid) for sid in writer.stack_count}
    except BaseException:
        # nothing half-written stays behind
        if tmp_events is not None:
            tmp_events.unlink(missing_ok=True)
        if created:
            shutil.rmtree(out, ignore_errors=True)
        if reader is not None:
            with contextlib.suppress(Exception):
                reader.close(timeout=0.5)
        raise
    finally:
        # detaching waits for RCU grace periods (~75 ms per tracepoint): do it meanwhile
        closer = threading.Thread(target=_close_quietly, args=(probe,), name="tinyjail-trace-detach")
        closer.start()
    try:
        records: list[Any] = []
        if reader is not None:
            reader.close()
            records = reader.records()
            messages.extend(f"note: {w}" for w in getattr(reader, "warnings", []))

        exit_status = wait_exit_status(wait_status)
        if failure.startswith(b"E"):
            eno = int(failure[1:] or 0)
            messages.append(f"cannot execute {path}: {os.strerror(eno)}")
            exit_status = 127 if eno == errno.ENOENT else 126
        if survivors:
            messages.append(f"note: {survivors} task(s) of the tree still ran {linger:.0f} s after CMD "
                            "exited; their later syscalls are not in the trace")

        procs = np.concatenate(drainer.procs) if drainer.procs else np.empty(0)
        processes = _processes_frame(procs, writer, pid, wait_status)
        stacks_df, stack_note = _stacks_frame(procs, writer, callers, stack_ips, live_maps, cwd)
        seccomp_df = _seccomp_frame(records, set(processes["pid"].tolist()) | {pid}, tmp_events, processes,
                                    policy)
        # a skipped probe run (never seen on 6.x, where these hooks run with preemption off) may
        # have been one of CMD's syscalls: counted as dropped, so the trace is flagged lossy
        dropped = (counters["events_lost"] + counters["paths_lost"] + counters["procs_lost"]
                   + counters["missed_runs"])
        meta: dict[str, Any] = {
            "command": " ".join(argv),
            "argv": list(argv),
            "cwd": cwd,
            "start_time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start_wall)),
            "kernel": platform.release(),
            "tinyjail_version": __version__,
            "exit_status": exit_status,
            "dropped": dropped,
            "lossy": dropped > 0,
            "events": writer.events,
            "duration_s": round(seconds, 6),
            "counters": counters,
            "stacks": {"enabled": stacks, "per_site": stack_k if stacks else 0, "note": stack_note},
            "durations": durations,
            "root_pid": pid,
            "policy": None if policy is None else str(getattr(policy, "source", "") or "<policy>"),
            "mode": (mode or "complain") if policy is not None else None,
            "seccomp_lost": int(getattr(reader, "lost", 0)) if reader is not None else 0,
            "survivors": survivors,
            "timing_s": {"startup": round(started - t_begin, 3), "command": round(seconds, 3),
                         "finish": None},
            "bpf_cache": probe.cache,
        }
        trace = Trace(events=empty_frame(EVENT_COLUMNS), processes=processes, stacks=stacks_df,
                      seccomp=seccomp_df, meta=meta)
        meta["timing_s"]["finish"] = round(time.monotonic() - t_cmd_end, 3)
        _save_with_events(trace, out, tmp_events)
        return RecordResult(out, exit_status, writer.events, dropped, int(np.count_nonzero(writer.counts)),
                            seconds, meta, len(seccomp_df), messages)
    except BaseException:
        # the trace directory never holds a half-written events file
        if tmp_events is not None:
            tmp_events.unlink(missing_ok=True)
        raise
    finally:
        closer.join()


def _warm_imports() -> None:
    """Import what the writer and the symbolizer need while bcc compiles."""
    with contextlib.suppress(ImportError):
        import elftools.elf.elffile  # noqa: F401
        import pandas  # noqa: F401
        import pyarrow.parquet  # noqa: F401


def _close_quietly(probe: Probe) -> None:
    with contextlib.suppress(Exception):
        probe.close()


def _save_with_events(trace: Trace, out: Path, tmp_events: Path | None) -> None:
    """Write tables and meta with timeline.save, then put the streamed events in place."""
    from tinyjail import timeline

    timeline.save(trace, out, force=True)
    if tmp_events is not None:
        os.replace(tmp_events, out / "events.parquet")


def _wait(pid: int, prog: Progress, show: bool, probe: Probe) -> int:
    """Wait for CMD, forwarding signals that did not come from the terminal; draw progress."""
    watched = {*FORWARDED, signal.SIGCHLD}
    live = None
    if show:
        from rich.console import Console
        from rich.live import Live
        from rich.text import Text

        live = Live(Text(""), console=Console(stderr=True), transient=True, refresh_per_second=4)
        live.start()
    try:
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                return status
            if live is not None:
                from rich.text import Text

                prog.dropped = probe.counters()["events_lost"]
                live.update(Text(_progress_line(prog)))
            info = signal.sigtimedwait(watched, 0.25)
            if info is None or info.si_signo == signal.SIGCHLD:
                continue
            if info.si_code == SI_KERNEL:
                continue
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, info.si_signo)
    finally:
        if live is not None:
            live.stop()




def _processes_frame(procs: np.ndarray[Any, Any], writer: EventWriter, root: int, wait_status: int) -> Any:
    import pandas as pd
    from tinyjail.tracer.syscalls.loader import PROC_EXEC, PROC_EXIT, PROC_FORK

    tgid = dict(writer.tgid)
    for rec in procs:
        if int(rec["kind"]) == PROC_EXIT:
            tgid[int(rec["tid"])] = int(rec["pid"])
    rows = []
    for rec in procs:
        kind = int(rec["kind"])
        base = {"ts": int(rec["ts"]), "comm": _cstr(bytes(rec["comm"])), "filename": None, "exit_code": -1,
                "ppid": -1}
        if kind == PROC_FORK:
            child = int(rec["tid"])
            parent = int(rec["ppid"])
            is_thread = tgid.get(child, child) == parent and child != parent
            rows.append({**base, "kind": "clone" if is_thread else "fork",
                         "pid": parent if is_thread else child, "tid": child, "ppid": parent,
                         "comm": _cstr(bytes(rec["filename"])) or base["comm"]})
        elif kind == PROC_EXEC:
            rows.append({**base, "kind": "exec", "pid": int(rec["pid"]), "tid": int(rec["tid"]),
                         "filename": _cstr(bytes(rec["filename"]))})
        elif kind == PROC_EXIT:
            p, t = int(rec["pid"]), int(rec["tid"])
            code = -1
            if int(rec["aux"]):   # the whole process is gone
                if p == root:
                    code = wait_status
                elif p in writer.exit_args:
                    code = (writer.exit_args[p] & 0xFF) << 8
            rows.append({**base, "kind": "exit", "pid": p, "tid": t, "exit_code": code})
    if not rows:
        return empty_frame(PROCESS_COLUMNS)
    df = pd.DataFrame(rows).sort_values("ts", kind="stable").reset_index(drop=True)
    from tinyjail.timeline import conform

    return conform(df, PROCESS_COLUMNS)


def _stacks_frame(procs: np.ndarray[Any, Any], writer: EventWriter, copies: dict[int, StackCopy],
                  stack_ips: dict[int, list[int]], live_maps: dict[int, Any], cwd: str) -> tuple[Any, str]:
    import pandas as pd
    from tinyjail.tracer.symbolize import AddressSpaces, symbolize_stack
    from tinyjail.tracer.syscalls.loader import PROC_EXEC, PROC_FORK, PROC_START

    from tinyjail.timeline import conform

    if not stack_ips:
        return empty_frame(STACK_COLUMNS), "no stacks taken"
    spaces = AddressSpaces()
    spaces.live.update(live_maps)
    # replay process and mapping events in time order
    items: list[tuple[int, int, Any]] = []
    for rec in procs:
        items.append((int(rec["ts"]), 0, rec))
    nr_open = {syscalls.number(n) for n in ("open", "openat", "openat2", "creat")}
    nr_close = syscalls.number("close")
    nr_mmap = syscalls.number("mmap")
    nr_dups = {syscalls.number(n) for n in ("dup", "dup2", "dup3")}
    for chunk in writer.keep:
        for i in range(len(chunk["ts"])):
            call = (int(chunk["pid"][i]), int(chunk["nr"][i]), chunk["args"][i], int(chunk["ret"][i]),
                    chunk["path"][i])
            items.append((int(chunk["ts"][i]), 1, call))
    items.sort(key=lambda x: (x[0], x[1]))
    tgid = writer.tgid
    for _, kind, item in items:
        if kind == 0:
            k = int(item["kind"])
            if k == PROC_FORK:
                child = int(item["tid"])
                if tgid.get(child, child) != int(item["ppid"]):
                    spaces.fork(int(item["ppid"]), child)
            elif k == PROC_EXEC:
                name = _cstr(bytes(item["filename"]))
                spaces.exec(int(item["pid"]), name if name.startswith("/") else os.path.join(cwd, name))
            elif k == PROC_START:
                nwords = int(item["aux"]) // 8
                spaces.start(int(item["pid"]), item["stack"][:nwords].tolist())
            continue
        pid, nr, args, ret, path = item
        if ret < 0 and ret >= -4095:
            continue
        if nr in nr_open and path:
            spaces.opened(pid, ret, path)
        elif nr == nr_close:
            spaces.closed(pid, int(args[0]) & 0xFFFFFFFF)
        elif nr in nr_dups:
            src = spaces.fds.get(pid, {}).get(int(args[0]) & 0xFFFFFFFF)
            if src:
                spaces.opened(pid, ret, src)
        elif nr == nr_mmap:
            fd = int(np.int32(np.uint32(int(args[4]) & 0xFFFFFFFF)))
            if fd >= 0:
                spaces.mmapped(pid, ret, int(args[1]), fd, int(args[5]))
    rows = []
    deep = unwound = 0
    for sid, ips in stack_ips.items():
        pid = writer.stack_pid.get(sid, 0)
        frames = symbolize_stack(spaces, pid, ips, copy=copies.get(sid))
        if sum(1 for f in frames if f.module != "[unknown]") >= 3:
            deep += 1
        if any(f.via == "cfi" for f in frames):
            unwound += 1
        count = writer.stack_count.get(sid, 0)
        for depth, f in enumerate(frames):
            rows.append({"stack_id": sid, "depth": depth, "ip": f.ip, "module": f.module, "symbol": f.symbol,
                         "offset": f.offset, "file": f.file, "line": f.line, "count": count, "via": f.via})
    note = (f"{unwound} of {len(stack_ips)} stacks unwound past code without frame pointers with .eh_frame "
            "CFI and a copy of the stack top (stacks.via says how each frame was found); the others "
            "walked with frame pointers, the caller read at the stack pointer when it is a return address")
    if deep < len(stack_ips) / 2:
        note = ("most stacks are 1-2 frames deep: the code lacks frame pointers (Debian's libc has none) "
                f"and CFI unwound only {unwound} of {len(stack_ips)}; kept: the syscall's ip and its caller")
    df = pd.DataFrame(rows)
    return conform(df, STACK_COLUMNS), note


def _seccomp_frame(records: list[Any], pids: set[int], events_file: Path | None, processes: Any,
                   policy: Any) -> Any:
    """The tree's audit records, each placed at the recorded call it logged (tracer/seccomp_join.py)."""
    import pandas as pd
    from tinyjail.tracer.seccomp_join import join, read_events

    from tinyjail.timeline import conform

    rows = [{"ts": r.mono_ns, "audit_ts": r.mono_ns, "serial": r.serial, "pid": r.pid, "comm": r.comm,
             "exe": r.exe, "nr": r.nr, "name": r.name, "arch": r.arch, "action": r.action, "ip": r.ip,
             "sig": r.sig}
            for r in records if r.pid in pids]
    if not rows:
        return empty_frame(SECCOMP_COLUMNS)
    frame = conform(pd.DataFrame(rows), SECCOMP_COLUMNS)
    if events_file is None:
        return frame
    return conform(join(frame, read_events(events_file, frame), processes, policy), SECCOMP_COLUMNS)


def record(
    argv: Sequence[str],
    *,
    stacks: bool = True,
    policy: Policy | None = None,
    mode: str | None = None,
    progress: bool = False,
    output: str | os.PathLike[str] | None = None,
    force: bool = False,
    stack_k: int = 8,
    linger: float = LINGER_S,
    durations: bool = False,
) -> Trace:
    """Record ``argv`` and return the loaded Trace (written to ``output``, or to a temporary
    directory that is removed after loading). ``durations``: see `record_to`."""
    from tinyjail import timeline

    if output is not None:
        result = record_to(argv, output, stacks=stacks, policy=policy, mode=mode, progress=progress,
                           force=force, stack_k=stack_k, linger=linger, durations=durations)
        return timeline.load(result.path)
    tmp = Path(tempfile.mkdtemp(prefix="tinyjail-trace-"))
    try:
        result = record_to(argv, tmp / "trace", stacks=stacks, policy=policy, mode=mode, progress=progress,
                           stack_k=stack_k, linger=linger, durations=durations)
        trace = timeline.load(result.path)
        trace.path = None
        return trace
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


__all__ = ["RecordResult", "decode_sockaddr", "record", "record_to", "split_columns"]
