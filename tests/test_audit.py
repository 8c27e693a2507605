"""The seccomp audit reader against real processes under real filters."""

from __future__ import annotations

import errno
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tinyjail import audit, symbols, syscalls
from tinyjail.audit import SeccompAuditReader

pytestmark = pytest.mark.root

N_CALLS = 10_000


def _python_child(body: str) -> subprocess.Popen[str]:
    """A Python child that loads a pyseccomp filter built by ``body`` and then acts."""
    code = "import ctypes, os, sys, pyseccomp\n" + textwrap.dedent(body)
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _require_log_audited() -> None:
    if "log" not in audit.actions_logged():
        pytest.fail("/proc/sys/kernel/seccomp/actions_logged lacks 'log': SCMP_ACT_LOG is not audited here")


def test_ten_thousand_logged_calls_give_exactly_ten_thousand_records() -> None:
    _require_log_audited()
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    with SeccompAuditReader() as reader:
        assert reader.warnings == []
        child = _python_child(f"""
            f = pyseccomp.SyscallFilter(pyseccomp.ALLOW)
            f.add_rule(pyseccomp.LOG, "getppid")
            f.load()
            for _ in range({N_CALLS}):
                os.getppid()
        """)
        child.communicate(timeout=120)
        assert child.returncode == 0
        started = time.perf_counter()
    drain_s = time.perf_counter() - started
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    reader.pids = lambda pid: pid == child.pid
    records = reader.records()
    assert len(records) == N_CALLS, f"{len(records)} records, lost={reader.lost}"
    assert reader.lost == 0
    getppid = syscalls.number("getppid")
    kinds = {(r.name, r.nr, r.action, r.arch, r.sig) for r in records}
    assert kinds == {("getppid", getppid, "log", "x86_64", 0)}
    assert len({r.comm for r in records}) == 1
    assert all(r.exe == str(Path(sys.executable).resolve()) for r in records)
    # Serials are the kernel's; they are distinct.
    assert len({r.serial for r in records}) == N_CALLS
    # The audit clock is coarse (jiffies) and in ms: allow 50 ms either side of the window.
    slack = 50_000_000
    assert all(before - slack <= r.mono_ns <= after + slack for r in records)
    assert drain_s < 5


def test_kill_process_record_names_the_syscall() -> None:
    with SeccompAuditReader() as reader:
        child = _python_child("""
            f = pyseccomp.SyscallFilter(pyseccomp.ALLOW)
            f.add_rule(pyseccomp.KILL_PROCESS, "getppid")
            f.load()
            os.getppid()
            print("survived")
        """)
        out, _ = child.communicate(timeout=60)
    assert child.returncode == -signal.SIGSYS
    assert "survived" not in out
    reader.pids = lambda pid: pid == child.pid
    records = reader.records()
    assert len(records) == 1
    rec = records[0]
    assert (rec.name, rec.nr, rec.action, rec.sig) == ("getppid", syscalls.number("getppid"), "kill_process",
                                                       signal.SIGSYS)
    assert rec.ip > 0


def test_errno_record_when_the_filter_asks_for_logging() -> None:
    """ERRNO is audited only for filters loaded with SECCOMP_FILTER_FLAG_LOG. The kernel logs the
    action alone (code=0x50000): the errno value itself is not in the record."""
    with SeccompAuditReader() as reader:
        child = _python_child(f"""
            f = pyseccomp.SyscallFilter(pyseccomp.ALLOW)
            f.set_attr(pyseccomp.Attr.CTL_LOG, 1)
            f.add_rule(pyseccomp.ERRNO({errno.EACCES}), "getppid")
            f.load()
            r = ctypes.CDLL(None, use_errno=True).syscall({syscalls.number("getppid")})
            print(r, ctypes.get_errno())
        """)
        out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    assert out.split() == ["-1", str(errno.EACCES)]
    reader.pids = lambda pid: pid == child.pid
    records = [r for r in reader.records() if r.name == "getppid"]
    assert len(records) == 1
    assert records[0].action == "errno"
    assert records[0].code & audit.SECCOMP_RET_ACTION_FULL == records[0].code


FOREIGN_ABI = r"""
#define _GNU_SOURCE
#include <unistd.h>
#include <sys/syscall.h>
int main(void) {
    long r;
    /* i386 ABI from a 64-bit process: eax=20 is getpid there */
    __asm__ volatile ("int $0x80" : "=a"(r) : "a"(20L) : "memory");
    /* x32 ABI: the x86_64 number of getpid with bit 0x40000000 */
    syscall(0x40000000L | SYS_getpid);
    return 0;
}
"""


def test_foreign_abi_records_are_decoded(tmp_path: Path, build_c: Callable[..., Path]) -> None:
    """int 0x80 and x32 calls reach the filter's bad-arch action; LOG makes them visible."""
    src = tmp_path / "abi.c"
    src.write_text(FOREIGN_ABI)
    exe = build_c(src, "-O0")
    with SeccompAuditReader() as reader:
        child = _python_child(f"""
            f = pyseccomp.SyscallFilter(pyseccomp.ALLOW)
            f.set_attr(pyseccomp.Attr.ACT_BADARCH, pyseccomp.LOG)
            f.load()
            os.execv({str(exe)!r}, [{str(exe)!r}])
        """)
        _, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    reader.pids = lambda pid: pid == child.pid
    seen = {(r.arch, r.nr, r.name) for r in reader.records()}
    getpid_x32 = syscalls.number("getpid", "x32")
    assert ("x86", 20, syscalls.name(20, "x86")) in seen
    assert syscalls.name(20, "x86") == "getpid"
    assert ("x32", getpid_x32, "getpid") in seen


def test_overruns_are_counted_not_hidden() -> None:
    """A deliberately tiny socket buffer and a starved reader thread lose records: the
    reader must say how many."""
    _require_log_audited()
    calls = 50_000
    old = sys.getswitchinterval()
    with SeccompAuditReader(rcvbuf=4096) as reader:
        child = _python_child(f"""
            f = pyseccomp.SyscallFilter(pyseccomp.ALLOW)
            f.add_rule(pyseccomp.LOG, "getppid")
            f.load()
            for _ in range({calls}):
                os.getppid()
        """)
        sys.setswitchinterval(0.05)   # keep the GIL from the reader thread while we spin
        try:
            while child.poll() is None:
                sum(range(10_000))
        finally:
            sys.setswitchinterval(old)
        child.communicate(timeout=120)
    reader.pids = lambda pid: pid == child.pid
    got = len(reader.records())
    assert got < calls, "no overrun happened; the test could not provoke one"
    assert reader.overruns > 0
    assert reader.lost >= calls - got


def test_reader_warns_when_log_is_not_audited(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "actions_logged"
    fake.write_text("kill_process kill_thread\n")
    monkeypatch.setattr(audit, "_ACTIONS_LOGGED", fake)
    with SeccompAuditReader() as reader:
        pass
    assert any("actions_logged" in w and "echo" in w for w in reader.warnings)


def test_audit_status_reports_auditd() -> None:
    status = audit.audit_status()
    running = subprocess.run(["pgrep", "-x", "auditd"], capture_output=True).returncode == 0
    assert (status.pid != 0) == running


def test_comm_with_a_space_is_decoded() -> None:
    """The kernel hex-encodes a comm holding a space; the record shows it as text."""
    _require_log_audited()
    with SeccompAuditReader() as reader:
        child = _python_child(f"""
            ctypes.CDLL(None).prctl({symbols.parse("prctl", 0, "PR_SET_NAME")}, b"odd name", 0, 0, 0)
            f = pyseccomp.SyscallFilter(pyseccomp.ALLOW)
            f.add_rule(pyseccomp.LOG, "getppid")
            f.load()
            os.getppid()
        """)
        child.communicate(timeout=60)
    reader.pids = lambda pid: pid == child.pid
    assert [r.comm for r in reader.records()] == ["odd name"]


def test_unprivileged_reader_fails_with_a_fix_hint() -> None:
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.fail("setpriv (util-linux) is needed to drop privileges")
    code = (
        "from tinyjail.audit import SeccompAuditReader\n"
        "from tinyjail.errors import BackendUnavailable\n"
        "try:\n"
        "    SeccompAuditReader().start()\n"
        "except BackendUnavailable as err:\n"
        "    print(err)\n"
    )
    proc = subprocess.run([setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
                           sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd="/")
    assert proc.returncode == 0, proc.stderr
    assert "CAP_AUDIT_READ" in proc.stdout and "run as root" in proc.stdout
