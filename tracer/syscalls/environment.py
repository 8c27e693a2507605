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
    if not any((d / "events" / "raw_syscalls").is_dir() for d in TRACEFS):
        return "tracefs is not mounted (no /sys/kernel/tracing/events/raw_syscalls); run 'make setup' as root"
    release = release or os.uname().release
    build = Path(f"/lib/modules/{release}/build/include")
    if not build.is_dir() and not Path("/sys/kernel/kheaders.tar.xz").exists():
        return (
            f"no kernel headers for {release} (/lib/modules/{release}/build); "
            "run 'make setup' (installs linux-headers-amd64 and links it) or 'modprobe kheaders'"
        )
    return None
