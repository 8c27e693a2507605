"""The trace on disk and in memory: column names, dtypes and Parquet I/O.

A trace is a directory::

    TRACE/
      meta.json            command, argv, cwd, start time, kernel, version, exit status, dropped
      events.parquet       one row per syscall (see EVENT_COLUMNS)
      processes.parquet    fork/exec/exit of every task of the traced tree (PROCESS_COLUMNS)
      stacks.parquet       symbolized user stacks, one row per frame (STACK_COLUMNS)
      seccomp.parquet      seccomp audit records joined to the timeline (SECCOMP_COLUMNS)

This module owns the schema so that the dashboard, `explain` and `profile` never import bcc.
Timestamps are CLOCK_MONOTONIC nanoseconds (bpf_ktime_get_ns) throughout.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tinyjail.errors import TraceError

if TYPE_CHECKING:
    import pandas as pd

FORMAT_VERSION = 1

# name -> pandas dtype. "category" columns are stored as Parquet dictionaries.
EVENT_COLUMNS: dict[str, str] = {
    "ts": "int64",           # ns, CLOCK_MONOTONIC: entry with --durations, else (or entry unseen) exit
    "pid": "int32",          # thread group id (what userspace calls the pid)
    "tid": "int32",          # thread id
    "comm": "category",      # task comm at the time of the call
    "nr": "int32",           # syscall number (native x86_64 numbering unless arch says otherwise)
    "name": "category",      # syscall name from libseccomp (syscall_<nr> when unknown)
    "arg0": "uint64", "arg1": "uint64", "arg2": "uint64",
    "arg3": "uint64", "arg4": "uint64", "arg5": "uint64",
    "ret": "int64",          # raw return value; -4095..-1 is -errno
    "errno": "category",     # "ENOENT"... decoded from ret, missing when the call succeeded
    "duration_ns": "int64",  # exit - entry; -1 when not measured (exit-only recording) or one side unseen
    "stack_id": "int32",     # key into stacks.stack_id; -1 when no stack was taken
    "ip": "uint64",          # user instruction pointer right after the syscall instruction
    "path": "string",        # path-like argument (open/openat/execve/stat*/unlink*/rename*/connect), bounded
}

PROCESS_COLUMNS: dict[str, str] = {
    "ts": "int64",
    "kind": "category",      # "fork" (new process), "clone" (new thread), "exec", "exit"
    "pid": "int32",          # tgid of the task concerned (the child for fork/clone)
    "tid": "int32",
    "ppid": "int32",         # parent tgid for fork/clone, -1 otherwise
    "comm": "category",
    "filename": "string",    # exec'd file for "exec"
    "exit_code": "int32",    # raw wait status style code for "exit", -1 otherwise
}

STACK_COLUMNS: dict[str, str] = {
    "stack_id": "int32",
    "depth": "int16",        # 0 = innermost frame (the syscall's ip)
    "ip": "uint64",
    "module": "string",      # /usr/lib/x86_64-linux-gnu/libc.so.6, or "[unknown]"
    "symbol": "string",      # function name, or missing
    "offset": "int64",       # ip - symbol start (or - module base when no symbol)
    "file": "string",        # source file where debug info exists
    "line": "int32",         # source line, -1 when unknown
    "count": "int64",        # syscalls that carried this stack (same value on every frame of it)
    "via": "category",       # how the frame was found: ip, kernel (frame-pointer walk), sp (word at sp),
                             # cfi (.eh_frame + stack copy), fp (frame pointer in the copy); missing: old
}

SECCOMP_COLUMNS: dict[str, str] = {
    "ts": "int64",           # ts of the call the record logged (tracer/seccomp_join.py), else audit_ts
    "serial": "int64",       # audit record serial
    "pid": "int32",
    "tid": "int32",          # thread of that call; -1 when the record matched no call (audit gives no tid)
    "comm": "category",
    "exe": "string",
    "nr": "int32",
    "name": "category",
    "arch": "category",      # "x86_64", "x86", "x32"
    "action": "category",    # "log", "kill_process", "kill_thread", "errno", "trap", ...
    "ip": "uint64",
    "sig": "int32",
    "audit_ts": "int64",     # the record's own stamp: coarse wall clock (per tick, ms) as CLOCK_MONOTONIC
}

TABLES: dict[str, dict[str, str]] = {
    "events": EVENT_COLUMNS,
    "processes": PROCESS_COLUMNS,
    "stacks": STACK_COLUMNS,
    "seccomp": SECCOMP_COLUMNS,
}

REQUIRED_META = (
    "command", "argv", "cwd", "start_time", "kernel", "tinyjail_version", "exit_status", "dropped",
)


def empty_frame(columns: dict[str, str]) -> pd.DataFrame:
    """An empty DataFrame with the right columns and dtypes."""
    import pandas as pd

    return pd.DataFrame({name: pd.Series([], dtype=dtype) for name, dtype in columns.items()})


def conform(df: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """Return ``df`` with exactly ``columns`` in order and with their dtypes (missing ones filled)."""
    import pandas as pd

    out = {}
    n = len(df)
    for name, dtype in columns.items():
        if name in df.columns:
            col = df[name]
            out[name] = col if str(col.dtype) == dtype else col.astype(dtype)
        else:
            fill: Any = -1 if dtype.startswith(("int", "uint")) and dtype != "uint64" else None
            if dtype == "uint64":
                fill = 0
            out[name] = pd.Series([fill] * n, dtype=dtype, index=df.index)
    return pd.DataFrame(out)


@dataclass
class Trace:
    """A loaded trace: four DataFrames and the meta dict. ``meta["dropped"]`` is an int."""

    events: pd.DataFrame
    processes: pd.DataFrame
    stacks: pd.DataFrame
    seccomp: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def dropped(self) -> int:
        """Events lost in the kernel (ring buffer full); a lossy trace must not make a profile silently."""
        return int(self.meta.get("dropped", 0))

    @property
    def lossy(self) -> bool:
        return self.dropped > 0

    @property
    def name(self) -> str:
        """A short label for views: the directory name, else the command."""
        if self.path is not None:
            return self.path.name
        return str(self.meta.get("command", "trace"))


def load(path: str | os.PathLike[str]) -> Trace:
    """Read a trace directory. Raises TraceError (one line) when it is missing or malformed."""
    import pandas as pd
    import pyarrow as pa

    root = Path(path)
    meta_path = root / "meta.json"
    if not root.is_dir():
        raise TraceError(f"{root}: not a trace directory (expected a folder made by 'tinyjail trace -o')")
    if not meta_path.is_file():
        raise TraceError(f"{root}: no meta.json; is this a trace directory made by 'tinyjail trace -o'?")
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise TraceError(f"{meta_path}: unreadable meta.json ({err})") from None
    if not isinstance(meta, dict):
        raise TraceError(f"{meta_path}: $: expected a JSON object")
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise TraceError(f"{meta_path}: $: missing keys {', '.join(missing)}")
    meta["dropped"] = int(meta["dropped"])
    frames: dict[str, pd.DataFrame] = {}
    for table, columns in TABLES.items():
        file = root / f"{table}.parquet"
        if not file.exists():
            frames[table] = empty_frame(columns)
            continue
        try:
            df = pd.read_parquet(file, engine="pyarrow")
        except (OSError, pa.ArrowException, ValueError) as err:
            raise TraceError(f"{file}: unreadable Parquet ({err})") from None
        if table == "seccomp" and "audit_ts" not in df.columns:
            df["audit_ts"] = df["ts"]   # traces written before the join: ts was the audit time
        frames[table] = conform(df, columns)
    return Trace(meta=meta, path=root, **frames)


def save(trace: Trace, path: str | os.PathLike[str], *, force: bool = False) -> Path:
    """Write ``trace`` to directory ``path``. Refuses to replace an existing trace unless ``force``."""
    root = Path(path)
    if root.exists() and any(root.iterdir()) and not force:
        raise TraceError(f"{root}: already exists and is not empty; choose another -o or pass --force")
    root.mkdir(parents=True, exist_ok=True)
    missing = [k for k in REQUIRED_META if k not in trace.meta]
    if missing:
        raise TraceError(f"trace meta lacks {', '.join(missing)}")
    meta = dict(trace.meta)
    meta["format_version"] = FORMAT_VERSION
    meta["dropped"] = int(meta["dropped"])
    for table, columns in TABLES.items():
        df = conform(getattr(trace, table), columns)
        df.to_parquet(root / f"{table}.parquet", engine="pyarrow", index=False, compression="zstd")
    (root / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n")
    trace.path = root
    return root


def present(value: object) -> bool:
    """False for None and pandas' missing markers (NA/NaN): a cell that holds a value."""
    if value is None:
        return False
    try:
        import pandas as pd

        return not bool(pd.isna(value))
    except (TypeError, ValueError):
        return True


def errno_name(ret: int) -> str | None:
    """The errno name of a raw syscall return value, or None when it is not an error."""
    import errno as _errno

    if -4095 <= ret < 0:
        return _errno.errorcode.get(-ret, f"E{-ret}")
    return None


__all__ = [
    "EVENT_COLUMNS",
    "PROCESS_COLUMNS",
    "SECCOMP_COLUMNS",
    "STACK_COLUMNS",
    "TABLES",
    "Trace",
    "conform",
    "empty_frame",
    "errno_name",
    "load",
    "present",
    "save",
]
