"""Seccomp audit records (type 1326, AUDIT_SECCOMP) read from the kernel's audit netlink socket.

Why netlink and not dmesg: the kernel prints audit records to the kernel log only when no
audit daemon is registered, and then through printk's rate limit (about 10 lines per 5 s),
so a burst of logged syscalls loses almost everything. Every record the kernel queues is
also sent to the NETLINK_AUDIT multicast group AUDIT_NLGRP_READLOG, to every listener with
CAP_AUDIT_READ, whether or not auditd is running (auditd owns only the unicast channel).
We bind to that group before the command starts and read in a background thread into a
big socket buffer. A full buffer makes the kernel drop records and flag ENOBUFS on the
socket: we count those overruns and the gaps in the kernel's record serial numbers and
report them as `lost` — never silently.

Draining: the kernel queues records in one FIFO and a kernel thread multicasts them. To
know every record of a finished command has arrived, `barrier()` makes one short-lived
thread of this process load a LOG filter for ``getppid`` and call it: when that record
arrives, everything queued before it has arrived too. The same probe at start-up proves
the path works end to end (``actions_logged`` contains ``log``, right network namespace).
See notes/audit.md.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import pyseccomp

from tinyjail import syscalls
from tinyjail.errors import BackendUnavailable

NETLINK_AUDIT = 9
AUDIT_NLGRP_READLOG = 1
AUDIT_GET = 1000
AUDIT_SECCOMP = 1326
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
RECV_BUFFER = 64 << 20
"""Socket buffer asked for: room for ~100k records if the reader thread falls behind."""

_NLMSGHDR = struct.Struct("=IHHII")
_MAX_TRACKED_GAP = 1 << 20
_RECORD = re.compile(rb"audit\((\d+)\.(\d+):(\d+)\):")
_FIELD = re.compile(rb'(\w+)=("[^"]*"|\S+)')
_ACTIONS_LOGGED = Path("/proc/sys/kernel/seccomp/actions_logged")

# SECCOMP_RET_* action values, from libseccomp through pyseccomp (ERRNO/TRACE carry data bits).
SECCOMP_RET_ACTION_FULL = 0xFFFF0000
SECCOMP_RET_DATA = 0x0000FFFF
_ACTION_NAMES: dict[int, str] = {
    int(pyseccomp.KILL_PROCESS): "kill_process",
    int(pyseccomp.KILL_THREAD): "kill_thread",
    int(pyseccomp.TRAP): "trap",
    int(pyseccomp.ERRNO(0)): "errno",
    int(pyseccomp.NOTIFY): "notify",
    int(pyseccomp.TRACE(0)): "trace",
    int(pyseccomp.LOG): "log",
    int(pyseccomp.ALLOW): "allow",
}
_ARCH_BY_TOKEN: dict[int, str] = {info.token: name for name, info in syscalls.ARCHES.items() if name != "x32"}


@dataclass(frozen=True)
class SeccompRecord:
    """One AUDIT_SECCOMP record. ``nr`` is the number as the kernel saw it (x32 numbers keep
    bit 0x40000000); ``mono_ns`` is the record's wall time mapped to CLOCK_MONOTONIC."""

    serial: int
    wall_ns: int
    mono_ns: int
    pid: int
    comm: str
    exe: str
    arch: str
    nr: int
    name: str
    ip: int
    action: str
    code: int
    sig: int


def action_name(code: int) -> str:
    """``code=0x7ffc0000`` -> ``"log"`` (the lower-cased OCI action suffix)."""
    return _ACTION_NAMES.get(code & SECCOMP_RET_ACTION_FULL, "unknown")


def decode_arch(token: int, nr: int) -> str:
    """AUDIT_ARCH token + syscall number -> ``x86_64``/``x86``/``x32`` (x32 reports the x86_64
    token; only the number's x32 bit tells them apart)."""
    arch = _ARCH_BY_TOKEN.get(token)
    if arch is None:
        return f"0x{token:08x}"
    if arch == "x86_64" and nr & syscalls.X32_SYSCALL_BIT:
        return "x32"
    return arch


def _untrusted(value: bytes) -> str:
    """The kernel quotes a clean comm/exe and hex-encodes one with spaces or quotes."""
    if value.startswith(b'"') and value.endswith(b'"'):
        return value[1:-1].decode(errors="replace")
    if value == b"(null)":
        return ""
    try:
        return bytes.fromhex(value.decode()).decode(errors="replace")
    except ValueError:
        return value.decode(errors="replace")


def parse_record(text: bytes, mono_offset_ns: int = 0) -> SeccompRecord | None:
    """Parse the body of an AUDIT_SECCOMP message; None when it is not one. ``code`` is the
    action alone: the kernel does not log the ERRNO/TRACE data bits."""
    head = _RECORD.match(text)
    if head is None:
        return None
    fields = dict(_FIELD.findall(text, head.end()))
    try:
        nr = int(fields[b"syscall"])
        token = int(fields[b"arch"], 16)
        code = int(fields[b"code"], 16)
        wall_ns = int(head.group(1)) * 1_000_000_000 + int(head.group(2)) * 1_000_000
        arch = decode_arch(token, nr)
        name = syscalls.name(nr, arch) if arch in syscalls.ARCHES else f"syscall_{nr}"
        return SeccompRecord(
            serial=int(head.group(3)),
            wall_ns=wall_ns,
            mono_ns=wall_ns - mono_offset_ns,
            pid=int(fields[b"pid"]),
            comm=_untrusted(fields.get(b"comm", b'""')),
            exe=_untrusted(fields.get(b"exe", b'""')),
            arch=arch,
            nr=nr,
            name=name,
            ip=int(fields.get(b"ip", b"0"), 16),
            action=action_name(code),
            code=code,
            sig=int(fields.get(b"sig", b"0")),
        )
    except (KeyError, ValueError):
        return None


def actions_logged() -> frozenset[str]:
    """The seccomp actions the kernel audits (``/proc/sys/kernel/seccomp/actions_logged``)."""
    try:
        return frozenset(_ACTIONS_LOGGED.read_text().split())
    except OSError:
        return frozenset()


@dataclass(frozen=True)
class AuditStatus:
    """The kernel's audit status (AUDIT_GET): ``pid`` is auditd's (0 when none), ``lost`` the
    kernel's own counter of records it dropped (backlog overflow, rate limit)."""

    enabled: int
    pid: int
    backlog_limit: int
    lost: int
    backlog: int


def audit_status() -> AuditStatus:
    """Ask the kernel for its audit status over a short-lived unicast NETLINK_AUDIT socket."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_AUDIT) as sock:
        sock.settimeout(2.0)
        sock.bind((0, 0))
        sock.send(_NLMSGHDR.pack(_NLMSGHDR.size, AUDIT_GET, 1, 1, 0))  # NLM_F_REQUEST
        while True:
            data = sock.recv(65536)
            kind = _NLMSGHDR.unpack_from(data)[1]
            if kind == AUDIT_GET:
                # struct audit_status: mask enabled failure pid rate_limit backlog_limit lost backlog
                f = struct.unpack_from("=8I", data, _NLMSGHDR.size)
                return AuditStatus(enabled=f[1], pid=f[3], backlog_limit=f[5], lost=f[6], backlog=f[7])
            if kind == 2:  # NLMSG_ERROR
                err = struct.unpack_from("=i", data, _NLMSGHDR.size)[0]
                if err:
                    raise OSError(-err, os.strerror(-err))


_PROBE_LOCK = threading.Lock()
_probes_issued = 0
"""Probes of every reader of this process (each reader sees all of them: same pid)."""


def _probe_number() -> int:
    nr = syscalls.number("getppid")
    assert nr is not None
    return nr


class SeccompAuditReader:
    """Collect AUDIT_SECCOMP records in a background thread while a command runs.

    ``pids`` selects whose records `records()` returns (e.g. ``lambda pid: pid in tree``);
    None keeps all. Use as a context manager, or call `start()` and `close()`.
    """

    def __init__(self, pids: Callable[[int], bool] | None = None, rcvbuf: int = RECV_BUFFER) -> None:
        self.pids = pids
        self.requested_rcvbuf = rcvbuf
        self.overruns = 0          # ENOBUFS errors: the socket buffer overflowed
        self._missing: set[int] = set()
        self._untracked_gaps = 0
        self.kernel_lost = 0       # growth of the kernel's audit lost counter while open
        self.warnings: list[str] = []
        self.auditd_pid = 0
        self.rcvbuf = 0
        self._raw: list[bytes] = []
        self._parsed: list[SeccompRecord] = []
        self._n_parsed = 0
        self._parse_lock = threading.Lock()
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._probes_at_bind = 0
        self._probe_seen = threading.Condition()
        self._probes_seen = 0
        self._last_serial = 0
        self._kernel_lost_at_start: int | None = None
        self.mono_offset_ns = time.clock_gettime_ns(time.CLOCK_REALTIME) - time.clock_gettime_ns(
            time.CLOCK_MONOTONIC
        )

    # -- life cycle ---------------------------------------------------------------------
    def start(self) -> SeccompAuditReader:
        """Open the socket, start the reader thread and prove records arrive (a probe)."""
        if self._sock is not None:
            return self
        try:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_AUDIT)
        except OSError as err:
            raise BackendUnavailable(
                f"cannot open a NETLINK_AUDIT socket ({err.strerror}); the kernel needs CONFIG_AUDIT"
            ) from None
        try:
            try:
                sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, self.requested_rcvbuf)
            except OSError:  # not CAP_NET_ADMIN: capped by net.core.rmem_max
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.requested_rcvbuf)
            with _PROBE_LOCK:  # no probe of another reader is in flight while we join
                sock.bind((0, 1 << (AUDIT_NLGRP_READLOG - 1)))
                self._probes_at_bind = _probes_issued
        except OSError as err:
            sock.close()
            hint = "run as root (needs CAP_AUDIT_READ)" if err.errno == errno.EPERM else "is audit built in?"
            raise BackendUnavailable(
                f"cannot join the audit readlog multicast group ({err.strerror}); {hint}"
            ) from None
        self.rcvbuf = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        sock.settimeout(0.1)
        self._sock = sock
        self._thread = threading.Thread(target=self._run, name="tinyjail-audit", daemon=True)
        self._thread.start()
        self._check_environment()
        return self

    def _check_environment(self) -> None:
        logged = actions_logged()
        if "log" not in logged:
            self.warnings.append(
                "the kernel does not audit SCMP_ACT_LOG (/proc/sys/kernel/seccomp/actions_logged is "
                f"{' '.join(sorted(logged)) or 'empty'}); fix: echo '{' '.join(sorted(logged | {'log'}))}' "
                "> /proc/sys/kernel/seccomp/actions_logged"
            )
        try:
            status = audit_status()
            self.auditd_pid = status.pid
            self._kernel_lost_at_start = status.lost
        except OSError as err:
            self.warnings.append(f"cannot read the kernel audit status ({err.strerror}); lost count partial")
        if "log" in logged and not self.barrier(timeout=3.0):
            self.warnings.append(
                "no audit record arrived from a test probe within 3 s: records will be missing "
                "(another network namespace? audit disabled at boot with audit=0?)"
            )

    def __enter__(self) -> SeccompAuditReader:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self, timeout: float = 3.0) -> None:
        """Wait until every record queued so far has arrived (see `barrier`), then stop."""
        if self._sock is None:
            return
        if "log" in actions_logged() and not self.barrier(timeout=timeout):
            self.warnings.append(f"audit records still pending after {timeout:.0f} s; some may be missing")
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sock.close()
        self._sock = None
        if self._kernel_lost_at_start is not None:
            with contextlib.suppress(OSError):
                self.kernel_lost = max(0, audit_status().lost - self._kernel_lost_at_start)

    # -- reading ------------------------------------------------------------------------
    def _run(self) -> None:
        """The hot loop: keep per-record work minimal (receive, note the serial, keep the raw
        datagram); parsing happens later in `records()`."""
        sock = self._sock
        assert sock is not None
        probe_call = b" syscall=" + str(_probe_number()).encode() + b" "
        probe_pid = b" pid=" + str(os.getpid()).encode() + b" "
        probe_code = b"code=" + hex(int(pyseccomp.LOG)).encode()
        recv = sock.recv
        keep = self._raw.append   # list.append is atomic under the GIL: no lock needed
        stop = self._stop
        hdr = _NLMSGHDR.size
        seccomp_type = AUDIT_SECCOMP.to_bytes(2, sys.byteorder)   # nlmsg_type, host order
        while not stop.is_set():
            try:
                data = recv(1 << 16)
            except TimeoutError:
                continue
            except OSError as err:
                if err.errno == errno.ENOBUFS:
                    self.overruns += 1
                    continue
                if stop.is_set():
                    break
                raise
            if len(data) < hdr:
                continue
            # "audit(SEC.MSEC:SERIAL): ..." right after the netlink header
            colon = data.find(b":", hdr + 6, hdr + 40)
            if colon > 0:
                paren = data.find(b")", colon)
                if paren > 0:
                    serial = int(data[colon + 1:paren])
                    if serial == self._last_serial + 1:
                        self._last_serial = serial
                    else:
                        self._account(serial)
            if data[4:6] != seccomp_type:
                continue
            if probe_call in data and probe_pid in data and probe_code in data:
                with self._probe_seen:
                    self._probes_seen += 1
                    self._probe_seen.notify_all()
                continue
            keep(data)

    def _account(self, serial: int) -> None:
        """Track serials never seen. Two CPUs may queue records out of serial order, so a
        gap only counts as loss while the late record has not turned up."""
        last = self._last_serial
        if not last:
            self._last_serial = serial
        elif serial > last:
            if serial - last - 1 > _MAX_TRACKED_GAP:
                self._untracked_gaps += serial - last - 1
            else:
                self._missing.update(range(last + 1, serial))
            self._last_serial = serial
        else:
            self._missing.discard(serial)

    @property
    def serial_gaps(self) -> int:
        """Record serials skipped and never received: records dropped somewhere on the way."""
        return len(self._missing) + self._untracked_gaps

    def barrier(self, timeout: float = 3.0) -> bool:
        """Return once every audit record queued before this call has been received.

        A throw-away thread of this process loads a LOG filter for ``getppid`` (filters bind
        to the calling thread only) and calls it; the kernel queues records in order, so its
        record arriving means all earlier ones have. False on timeout.
        """
        global _probes_issued
        with _PROBE_LOCK:
            _probes_issued += 1
            wanted = _probes_issued - self._probes_at_bind
            return self._probe(wanted, timeout)

    def _probe(self, wanted: int, timeout: float) -> bool:
        failure: list[BaseException] = []

        def probe() -> None:
            try:
                filt = pyseccomp.SyscallFilter(pyseccomp.ALLOW)
                filt.add_rule(pyseccomp.LOG, "getppid")
                filt.load()
                os.getppid()
            except BaseException as err:  # reported below
                failure.append(err)

        worker = threading.Thread(target=probe, name="tinyjail-audit-probe")
        worker.start()
        worker.join()
        if failure:
            self.warnings.append(f"audit probe could not load its filter: {failure[0]}")
            return False
        with self._probe_seen:
            return self._probe_seen.wait_for(lambda: self._probes_seen >= wanted, timeout=timeout)

    # -- results ------------------------------------------------------------------------
    def records(self) -> list[SeccompRecord]:
        """Every record received so far that matches ``pids``, in arrival (kernel) order."""
        with self._parse_lock:   # records() may be called from several threads
            upto = len(self._raw)
            fresh = self._raw[self._n_parsed:upto]
            self._n_parsed = upto
            for data in fresh:
                length = _NLMSGHDR.unpack_from(data)[0]
                end = min(len(data), length) if length >= _NLMSGHDR.size else len(data)
                rec = parse_record(data[_NLMSGHDR.size:end].rstrip(b"\0"), self.mono_offset_ns)
                if rec is not None:
                    self._parsed.append(rec)
            parsed = list(self._parsed)
        keep = self.pids
        return parsed if keep is None else [r for r in parsed if keep(r.pid)]

    @property
    def lost(self) -> int:
        """Records that never reached us: serial gaps (socket overflow or kernel drops), at
        least one per overrun, plus the growth of the kernel's own lost counter (system-wide,
        so it may count records of other processes: an upper bound, never an undercount)."""
        return max(self.serial_gaps, self.overruns) + self.kernel_lost


__all__ = [
    "AUDIT_SECCOMP",
    "AuditStatus",
    "SeccompAuditReader",
    "SeccompRecord",
    "action_name",
    "actions_logged",
    "audit_status",
    "decode_arch",
    "parse_record",
]
