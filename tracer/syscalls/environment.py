"""What `tinyjail trace` needs from the machine, checked before bcc is touched.

One clear line naming the first missing piece and the fix is worth more than bcc's compiler
output or a bare EPERM from bpf(2).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

CAP_SYS_ADMIN = 21
CAP_PERFMON = 38
CAP_BPF = 39
TRACEFS = (Path("/sys/kernel/tracing"), Path("/sys/kernel/debug/tracing"))
KHEADERS = Path("/sys/kernel/kheaders.tar.xz")


def effective_caps(status: str | None = None) -> int:
    """The CapEff mask of this process (from /proc/self/status, or ``status`` text for tests)."""
    text = status if status is not None else Path("/proc/self/status").read_text()
    for line in text.splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    return 0


def has_bpf_privilege(caps: int) -> bool:
    """Root's CAP_SYS_ADMIN, or CAP_BPF together with CAP_PERFMON (tracing programs need both)."""
    if caps & (1 << CAP_SYS_ADMIN):
        return True
    return bool(caps & (1 << CAP_BPF)) and bool(caps & (1 << CAP_PERFMON))


def missing_prerequisite(caps: int | None = None, release: str | None = None) -> str | None:
    """None when tracing can work, else one line: what is missing and how to fix it."""
    caps = effective_caps() if caps is None else caps
    if not has_bpf_privilege(caps):
        return (
            f"tracing needs root or CAP_BPF+CAP_PERFMON (running as uid {os.geteuid()} without them); "
            "run 'sudo tinyjail trace ...'"
        )
    if importlib.util.find_spec("bcc") is None:
        return "bcc (python3-bpfcc) is not importable from this Python; run 'make setup'"
    why = tracefs_problem()
    if why:
        return why
    release = release or os.uname().release
    if not _exists(Path(f"/lib/modules/{release}/build/include")) and not _exists(KHEADERS):
        return (
            f"no kernel headers for {release} (/lib/modules/{release}/build); "
            "run 'make setup' (installs linux-headers-amd64 and links it) or 'modprobe kheaders'"
        )
    return None


def _exists(path: Path) -> bool:
    """Path.exists that answers False instead of raising when a parent is not searchable."""
    try:
        return path.exists()
    except OSError:
        return False


def _unreadable(path: Path) -> Path | None:
    """The first directory on the way to ``path`` this process may not search, if any."""
    for part in reversed([path, *path.parents]):
        try:
            os.stat(part)
        except PermissionError:
            return part.parent if part.parent != part else part
        except OSError:
            return None
    return None


def tracefs_problem() -> str | None:
    """None when raw_syscalls is visible in a tracefs mount, else why not, in one line.

    CAP_BPF+CAP_PERFMON do not bypass file permissions: tracefs is mode 0700 root by default,
    so a non-root tracer fails here with EACCES, which must not surface as a traceback.
    """
    denied: list[Path] = []
    for d in TRACEFS:
        events = d / "events" / "raw_syscalls"
        try:
            if events.is_dir():
                return None
        except PermissionError:
            denied.append(_unreadable(events) or d)
        except OSError:
            continue
    if denied:
        where = denied[0]
        try:
            st = os.stat(where)
            how = f"{where} is mode {st.st_mode & 0o7777:04o}, uid {st.st_uid}, gid {st.st_gid}"
        except OSError:
            how = f"{where} is not searchable"
        return (
            f"tracefs is not readable by uid {os.geteuid()} ({how}); run as root, or mount tracefs "
            "with a group you are in (mount -o remount,gid=GID,mode=0750 /sys/kernel/tracing)"
        )
    return "tracefs is not mounted (no /sys/kernel/tracing/events/raw_syscalls); run 'make setup' as root"
